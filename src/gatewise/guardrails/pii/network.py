"""IP addresses: IPv4 with octet checks, IPv6 validated by the standard library.

A dotted quad is also how software versions are written (``1.2.3.4``), so a
quad right after a version word ("version", "v", "build", "release", ...) is
not an address, and neither is one with leading zeros (``01.02.03.04``) or one
that continues (``1.3.6.1.4.1`` is an OID). Addresses that identify no one
(``0.0.0.0``, broadcast, netmasks, loopback) get a low score rather than none.

IPv6 candidates are runs of hex groups and colons that ``ipaddress`` accepts
and that contain a digit (``Dead::Beef`` parses but is a Ruby constant);
MAC addresses and clock times do not parse as IPv6.
"""

from __future__ import annotations

import ipaddress
import re

from gatewise.guardrails.pii.recognizer import Match

_IPV4 = re.compile(r"\d(?<![\w.:]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?![\w:]|\.\d)"
)
_VERSION_BEFORE = re.compile(
    r"(?<![a-z])(?:version|ver\.?|v|release|build|firmware|revision|rev\.?|update|patch|sdk|api)"
    r"\s*[:=#]?\s*$"
)
_NOT_PERSONAL_V4 = ("0.0.0.0", "255.255.255.255", "127.0.0.1")


def _octets_ok(quad: str) -> bool:
    for part in quad.split("."):
        if int(part) > 255 or (len(part) > 1 and part[0] == "0"):
            return False
    return True


def find_ips(text: str, lower: str) -> list[Match]:
    """IPv4 and IPv6 addresses; see the module docstring."""
    found: list[Match] = []
    if "." in text:
        for m in _IPV4.finditer(text):
            quad = m.group()
            start = m.start()
            if not _octets_ok(quad) or _VERSION_BEFORE.search(lower, max(0, start - 16), start):
                continue
            low = quad in _NOT_PERSONAL_V4 or quad.startswith("255.")
            found.append(Match(start, m.end(), "IP_ADDRESS", 0.3 if low else 0.85))
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            candidate = m.group()
            if len(candidate) < 6 or not any(c.isdigit() for c in candidate):
                continue
            try:
                address = ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            low = address.is_loopback or address.is_unspecified
            found.append(Match(m.start(), m.end(), "IP_ADDRESS", 0.3 if low else 0.85))
    return found
