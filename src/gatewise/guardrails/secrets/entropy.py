"""How random a string looks: Shannon entropy and character classes.

Placeholders ("changeme", "your-api-key", "xxxxxxxx", "<password>") are words
or repeats: few distinct characters, one or two classes. Real secrets are
random: a generated 40-character key has close to log2(64) = 6 bits per
character in principle and about 4.5-5 bits measured over so short a string; a
human password mixes classes. These two cheap measures separate the two well
enough that a key-shaped token or a ``password=`` value counts only when it
looks random.
"""

from __future__ import annotations

import math
from collections import Counter


def shannon(value: str) -> float:
    """Bits per character of ``value``'s own character distribution (0 for "")."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def char_classes(value: str) -> int:
    """How many of lower case, upper case, digits and other characters ``value`` uses."""
    lower = upper = digit = other = 0
    for char in value:
        if char.islower():
            lower = 1
        elif char.isupper():
            upper = 1
        elif char.isdigit():
            digit = 1
        else:
            other = 1
    return lower + upper + digit + other


def looks_random(value: str, min_entropy: float = 3.0, min_classes: int = 2) -> bool:
    """Whether a token is plausibly generated rather than typed as a placeholder."""
    return char_classes(value) >= min_classes and shannon(value) >= min_entropy
