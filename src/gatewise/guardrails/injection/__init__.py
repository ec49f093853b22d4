"""Prompt-injection and jailbreak detection (the fast, pattern-based tier).

``normalize`` makes the views worth reading, ``rules`` scores pattern sets,
``direct`` and ``channel`` hold the attack families, ``suffix`` measures
adversarial suffixes, ``detector`` puts them together as ``InjectionDetector``.
"""

from .detector import InjectionDetector

__all__ = ["InjectionDetector"]
