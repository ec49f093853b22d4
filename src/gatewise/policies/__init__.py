"""The policies every request passes: authentication, access; later limits, guardrails, cache."""
