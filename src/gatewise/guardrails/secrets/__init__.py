"""Secret detection: API keys, private keys, JWTs and passwords in text.

``tokens``: provider credentials by prefix and shape (OpenAI, Anthropic,
Google, AWS, GitHub, GitLab, Slack, Stripe); ``blocks``: PEM private keys and
JWTs; ``passwords``: password assignments and URL credentials; ``entropy``:
the randomness checks that keep placeholders out. Standard library (and
orjson) only.
"""

from gatewise.guardrails.secrets.detector import SecretsDetector

__all__ = ["SecretsDetector"]
