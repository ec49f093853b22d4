"""PII detection: recognizers for structured personal data and ``PiiDetector``.

One module per family (``contact``: e-mail and phone; ``financial``: cards and
IBANs; ``identity``: US SSN and birth dates; ``network``: IP addresses), each
a few regular expressions that find candidates and Python that validates them.
Standard library only, so the detector runs on the request path in microseconds.
"""

from gatewise.guardrails.pii.detector import RECOGNIZERS, PiiDetector
from gatewise.guardrails.pii.recognizer import Match

__all__ = ["RECOGNIZERS", "Match", "PiiDetector"]
