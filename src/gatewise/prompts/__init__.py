"""Prompts as endpoints: the registry, rendering, input and output schemas, rollout,
per-version outcomes and the prompt test runner (``http/prompts.py`` is the front door)."""
