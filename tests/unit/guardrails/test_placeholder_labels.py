"""Placeholders read back whatever label they were made with (moderation's are free-form)."""

from __future__ import annotations

import pytest

from gatewise.guardrails.masking import Vault, apply, placeholder_label


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("EMAIL", "EMAIL"),
        ("keyword", "KEYWORD"),
        ("self-harm", "SELF_HARM"),
        ("a.b/c", "A_B_C"),
        ("9mm", "X9MM"),
    ],
)
def test_labels_become_placeholder_labels(label: str, expected: str) -> None:
    assert placeholder_label(label) == expected


@pytest.mark.parametrize("label", ["keyword", "self-harm", "9mm", "pattern"])
def test_a_placeholder_of_any_label_is_restored(label: str) -> None:
    vault = Vault()
    made = vault.placeholder(label, "Project Falcon")
    text = f"about {made}."
    assert apply(text, vault.unmask(text)) == "about Project Falcon."
    assert vault.open_tail(f"about {made[:-2]}") == len("about ")
