"""Prompt-injection and jailbreak detection.

The fast tier: ``normalize`` makes the views worth reading, ``rules`` scores
pattern sets, ``direct`` and ``channel`` hold the attack families, ``suffix``
measures adversarial suffixes, ``detector`` puts them together as
``InjectionDetector``. The optional model tier (``model.py``, trained by
``train.py``) scores a text with a small classifier over sentence embeddings.
"""

from .detector import InjectionDetector

__all__ = ["InjectionDetector"]
