"""Prompt-injection detection: rules over normalised text, and an optional model tier
(``model.py``, trained by ``train.py``) that scores a text with a small classifier
over sentence embeddings."""
