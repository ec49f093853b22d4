"""The semantic cache's lexical guard: a candidate hit that changes a number, a
negation, an entity or a scope is refused; typos, word order and rewordings pass."""

from __future__ import annotations

import time

import pytest

from gatewise.cache.semantic_guard import COPY, REFUSED, REWORDED, accept, compare, signature


def kind(cached: str, query: str) -> str:
    return compare(signature(query), signature(cached))


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("Cancel my subscription", "Don't cancel my subscription"),
        (
            "Which plans include international calls?",
            "Which plans do not include international calls?",
        ),
        (
            "Do I need a prescription for this medicine?",
            "Can I get this medicine without a prescription?",
        ),
        ("What's the price for members?", "What's the price for non-members?"),
        ("How do I lock my card?", "How do I unlock my card?"),
        ("How do I enable dark mode?", "How do I disable dark mode?"),
        ("Is ibuprofen safe to take with alcohol?", "Is ibuprofen unsafe to take with alcohol?"),
    ],
)
def test_negations_are_refused(cached: str, query: str) -> None:
    assert kind(cached, query) == REFUSED


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("Track order 48213", "Track order 48231"),
        ("Is the 9:15 train on time?", "Is the 9:45 train on time?"),
        ("Do you have a table for 2 at 7pm?", "Do you have a table for 12 at 7pm?"),
        ("How much is the Pro plan for five users?", "How much is the Pro plan for 50 users?"),
        ("Who won the World Cup in 2014?", "Who won the World Cup in 2018?"),
        ("Transfer £50 to Sam", "Transfer £500 to Sam"),
    ],
)
def test_changed_numbers_are_refused(cached: str, query: str) -> None:
    assert kind(cached, query) == REFUSED


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("What's Mary's phone number?", "What's Mark's phone number?"),
        ("Send the invoice to Sarah", "Send the invoice to Sam"),
        ("Email the report to ann@example.com", "Email the report to bob@example.com"),
        ("What time is the last train to Bristol?", "What time is the last train to Brighton?"),
        ("Who won the men's final at Wimbledon?", "Who won the women's final at Wimbledon?"),
        (
            "Transfer £50 from my savings to my current account",
            "Transfer £50 from my current account to my savings",
        ),
        ("How do I convert a Word document to PDF?", "How do I convert a PDF to a Word document?"),
        ("What's the legal drinking age in the UK?", "What's the legal drinking age in the US?"),
    ],
)
def test_swapped_entities_are_refused(cached: str, query: str) -> None:
    assert kind(cached, query) == REFUSED


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("How do I reset my password?", "How do I reset my colleague's password?"),
        ("What's the paracetamol dose for adults?", "What's the paracetamol dose for children?"),
        ("How do I delete my files?", "How do I delete all files?"),
    ],
)
def test_changed_scope_is_refused(cached: str, query: str) -> None:
    assert kind(cached, query) == REFUSED


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        (
            "What time does the leisure centre open on Mondays?",
            "What time does the leisure center open on Mondys?",
        ),
        (
            "Why is my broadband connection so slow in the evenings?",
            "Why is my broadband conection so slow in the evenigns?",
        ),
        (
            "How do I apply for a school place for my child?",
            "How do I aply for a school place for my chlid?",
        ),
        ("How do I check my data usage?", "um how do i check my data usage"),
        ("How do I set up voicemail on my phone?", "On my phone, how do I set up voicemail?"),
        ("Can I freeze my gym membership?", "CAN I FREEZE MY GYM MEMBERSHIP!?"),
        ("How do I order a new debit card?", "How can I order a new debit card, please?"),
    ],
)
def test_typos_order_and_politeness_are_a_copy(cached: str, query: str) -> None:
    assert kind(cached, query) == COPY


@pytest.mark.parametrize(
    ("cached", "query"),
    [
        ("Can I pay with PayPal?", "Do you accept PayPal?"),
        ("How long does delivery take?", "How many days does shipping take?"),
        (
            "Is it safe to fly at 30 weeks pregnant?",
            "Can I take a flight when I'm 30 weeks pregnant?",
        ),
        ("How do I turn on two-factor authentication?", "How can I set up 2FA on my account?"),
    ],
)
def test_rewordings_are_left_to_the_cosine_threshold(cached: str, query: str) -> None:
    assert kind(cached, query) == REWORDED


def test_a_short_question_with_one_word_changed_is_left_to_the_cosine() -> None:
    """A known limit: with two content words, one changed is half the question, which
    reads as a rewording (the embedding's threshold decides)."""
    assert kind("Can I pay with PayPal?", "Can I pay with Klarna?") == REWORDED
    assert kind("How do I delete a message?", "How do I delete my account?") == REWORDED


def test_accept_applies_the_threshold_of_its_kind() -> None:
    cached = signature("How do I check my data usage?")
    copy, reworded = (
        signature("how do i chek my data usage"),
        signature("Where can I see how much data I used?"),
    )
    assert accept(copy, cached, 0.7, threshold=0.81, copy_threshold=0.6)
    assert not accept(copy, cached, 0.55, threshold=0.81, copy_threshold=0.6)
    assert not accept(reworded, cached, 0.8, threshold=0.81, copy_threshold=0.6)
    assert accept(reworded, cached, 0.85, threshold=0.81, copy_threshold=0.6)
    refused = signature("How do I check my colleague's data usage?")
    assert not accept(refused, cached, 0.99, threshold=0.81, copy_threshold=0.6)


def test_the_guard_is_fast_on_a_candidate_hit() -> None:
    cached = signature("What is the baggage allowance for economy passengers on long-haul flights?")
    query = "What is the bagage allowence for economy pasengers on long-haul flights?"
    best = float("inf")
    for _ in range(5):  # the best of five: the machine may be shared
        start = time.perf_counter()
        for _ in range(400):
            compare(signature(query), cached)
        best = min(best, (time.perf_counter() - start) / 400)
    assert best < 100e-6, f"{best * 1e6:.1f} us per guarded lookup"
