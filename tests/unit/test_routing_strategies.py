"""Routing strategies: each orders a model's deployments for one call."""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import pytest

from gatewise.config import routing as config_routing
from gatewise.routing.strategies import (
    MIN_PREFIX_CHARS,
    STRATEGIES,
    Failover,
    LeastBusy,
    LeastLatency,
    LowestCost,
    PrefixAffinity,
    Tags,
    Weighted,
    make_strategy,
    prompt_prefix,
)
from gatewise.routing.types import Candidate, DeploymentInfo, RoutingInput, RoutingStrategy


@dataclass
class FakeHealth:
    in_flight: int = 0
    ttfb_ewma_ms: float | None = None
    total_ewma_ms: float | None = None


def cand(
    name: str,
    position: int,
    weight: int = 1,
    tags: Sequence[str] = (),
    price: tuple[float, float] = (0.0, 0.0),
    in_flight: int = 0,
    ttfb_ewma_ms: float | None = None,
    total_ewma_ms: float | None = None,
) -> Candidate:
    info = DeploymentInfo(
        name,
        "openai",
        name,
        weight,
        frozenset(tags),
        input_per_million=price[0],
        output_per_million=price[1],
    )
    return Candidate(info, FakeHealth(in_flight, ttfb_ewma_ms, total_ewma_ms), position)


def ids(candidates: Sequence[Candidate]) -> list[str]:
    return [c.info.id for c in candidates]


def firsts(
    strategy: RoutingStrategy, candidates: Sequence[Candidate], calls: Iterable[RoutingInput]
) -> Counter[str]:
    """How often each deployment was put first over ``calls``."""
    return Counter(strategy.order(candidates, call)[0].info.id for call in calls)


def plain(n: int) -> Iterator[RoutingInput]:
    return (RoutingInput() for _ in range(n))


def sticky(n: int, kind: str = "key") -> Iterator[RoutingInput]:
    return (RoutingInput(sticky=f"{kind}-{i}") for i in range(n))


def prefixes(n: int) -> Iterator[RoutingInput]:
    return (RoutingInput(prefix=f"p{i}") for i in range(n))


def test_failover_keeps_configured_order_in_a_new_list() -> None:
    candidates = [cand("a", 0), cand("b", 1), cand("c", 2)]
    ordered = Failover().order(candidates, RoutingInput())
    assert ids(ordered) == ["a", "b", "c"]
    ordered.pop()
    assert len(candidates) == 3
    shuffled = (cand("c", 5), cand("a", 1), cand("b", 3))
    assert ids(Failover().order(shuffled, RoutingInput())) == ["a", "b", "c"]


def test_weighted_random_split_follows_weights() -> None:
    candidates = (cand("stable", 0, weight=90), cand("canary", 1, weight=10))
    counts = firsts(Weighted(random.Random(1234)), candidates, plain(20_000))
    assert 0.88 <= counts["stable"] / 20_000 <= 0.92


WEIGHTS = {"a": 10, "b": 30, "c": 10, "d": 50}


def test_weighted_random_rest_by_descending_weight_then_position() -> None:
    strategy = Weighted(random.Random(5))
    candidates = [cand(name, i, weight=w) for i, (name, w) in enumerate(WEIGHTS.items())]
    seen: set[str] = set()
    for _ in range(500):
        call = RoutingInput()
        ordered = ids(strategy.order(candidates, call))
        assert call.notes == ["weighted:random"]
        assert ordered[1:] == [name for name in "dbac" if name != ordered[0]]
        seen.add(ordered[0])
    assert seen == {"a", "b", "c", "d"}


def test_weighted_zero_weight_is_never_first() -> None:
    strategy = Weighted(random.Random(9))
    candidates = (cand("off", 0, weight=0), cand("b", 1), cand("c", 2))
    assert firsts(strategy, candidates, plain(2_000))["off"] == 0
    for call in sticky(2_000):
        ordered = ids(strategy.order(candidates, call))
        assert ordered[0] != "off"
        assert ordered[-1] == "off"
    all_off = (cand("b", 1, weight=0), cand("a", 0, weight=0))
    assert ids(strategy.order(all_off, RoutingInput())) == ["a", "b"]
    assert ids(strategy.order(all_off, RoutingInput(sticky="k"))) == ["a", "b"]


def test_weighted_sticky_is_deterministic_per_value() -> None:
    candidates = [cand(f"d{i}", i, weight=w) for i, w in enumerate((5, 3, 2))]
    orders: dict[str, list[str]] = {}
    for strategy in (Weighted(random.Random(1)), Weighted(random.Random(2))):
        for call in sticky(200):
            assert call.sticky is not None
            ordered = ids(strategy.order(candidates, call))
            assert call.notes == ["weighted:sticky"]
            assert orders.setdefault(call.sticky, ordered) == ordered
    # Arrival order does not matter either.
    assert ids(Weighted().order(candidates[::-1], RoutingInput(sticky="key-7"))) == orders["key-7"]
    assert {order[0] for order in orders.values()} == {"d0", "d1", "d2"}


def test_weighted_sticky_matches_the_rendezvous_formula() -> None:
    candidates = [cand(f"openai/gpt-4o#{i}", i, weight=w) for i, w in enumerate((7, 2, 1, 4))]

    def score(key: str, candidate: Candidate) -> float:
        digest = hashlib.blake2b(f"{key}\x00{candidate.info.id}".encode(), digest_size=8)
        u = (int.from_bytes(digest.digest(), "big") + 0.5) / 2**64
        return -math.log(u) / candidate.info.weight

    for call in sticky(300, "session"):
        key = call.sticky or ""
        expected = ids(sorted(candidates, key=lambda c: score(key, c)))
        assert ids(Weighted().order(candidates, call)) == expected


def test_weighted_sticky_is_proportional_across_values() -> None:
    two = (cand("stable", 0, weight=90), cand("canary", 1, weight=10))
    assert 0.88 <= firsts(Weighted(), two, sticky(20_000))["stable"] / 20_000 <= 0.92
    three = (cand("a", 0, weight=50), cand("b", 1, weight=30), cand("c", 2, weight=20))
    counts = firsts(Weighted(), three, sticky(20_000, "user"))
    for name, share in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        assert counts[name] / 20_000 == pytest.approx(share, abs=0.02)


def test_weighted_sticky_removing_a_deployment_moves_only_its_values() -> None:
    full = [cand("a", 0, weight=3), cand("b", 1, weight=2), cand("c", 2, weight=1)]
    moved = 0
    for call in sticky(5_000):
        before = Weighted().order(full, call)[0].info.id
        after = Weighted().order([full[0], full[2]], call)[0].info.id
        if before == "b":
            moved += 1
        else:
            assert after == before, call.sticky
    assert 1_400 < moved < 1_900  # b's third of the values


def test_weighted_sticky_adding_a_deployment_only_takes_values() -> None:
    old = [cand("a", 0), cand("b", 1)]
    taken = 0
    for call in sticky(3_000, "user"):
        before = Weighted().order(old, call)[0].info.id
        after = Weighted().order([*old, cand("c", 2)], call)[0].info.id
        assert after in (before, "c")
        taken += after == "c"
    assert 850 < taken < 1_150


def test_least_latency_explores_unmeasured_first_then_fastest() -> None:
    candidates = (
        cand("slow", 0, ttfb_ewma_ms=900.0),
        cand("new-1", 1),
        cand("fast", 2, ttfb_ewma_ms=120.0),
        cand("new-2", 3),
        cand("mid", 4, ttfb_ewma_ms=400.0),
    )
    call = RoutingInput()
    ordered = LeastLatency(rng=random.Random(1)).order(candidates, call)
    assert ids(ordered) == ["new-1", "new-2", "fast", "mid", "slow"]
    assert call.notes == ["least_latency:explore"]
    measured = [c for c in candidates if c.health.ttfb_ewma_ms is not None]
    for _ in range(100):
        call = RoutingInput()
        assert ids(LeastLatency().order(measured, call)) == ["fast", "mid", "slow"]
        assert call.notes == []


def test_least_latency_options() -> None:
    candidates = (
        cand("quick-start", 0, ttfb_ewma_ms=100.0, total_ewma_ms=5_000.0),
        cand("quick-finish", 1, ttfb_ewma_ms=300.0, total_ewma_ms=1_000.0),
    )
    assert ids(LeastLatency().order(candidates, RoutingInput()))[0] == "quick-start"
    by_total = LeastLatency(measure="total").order(candidates, RoutingInput())
    assert ids(by_total) == ["quick-finish", "quick-start"]
    with pytest.raises(ValueError, match="measure"):
        LeastLatency(measure="p99")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tolerance"):
        LeastLatency(tolerance=-0.1)


LATENCIES = {"a": 100.0, "b": 108.0, "c": 111.0}


def test_least_latency_spreads_ties_within_tolerance() -> None:
    strategy = LeastLatency(rng=random.Random(3))
    candidates = [cand(name, i, ttfb_ewma_ms=t) for i, (name, t) in enumerate(LATENCIES.items())]
    assert all(strategy.order(candidates, call)[-1].info.id == "c" for call in plain(500))
    counts = firsts(strategy, candidates, plain(2_000))
    assert counts["c"] == 0  # 11% slower: outside the tie band
    assert 800 < counts["a"] < 1_200
    strict = LeastLatency(tolerance=0.0, rng=random.Random(4))
    assert firsts(strict, candidates, plain(200)) == {"a": 200}


def test_lowest_cost_weighs_the_call_tokens() -> None:
    candidates = (cand("cheap-out", 0, price=(10.0, 1.0)), cand("cheap-in", 1, price=(1.0, 10.0)))
    long_prompt = RoutingInput(input_tokens=50_000, output_tokens=100)
    long_answer = RoutingInput(input_tokens=100, output_tokens=50_000)
    assert ids(LowestCost().order(candidates, long_prompt)) == ["cheap-in", "cheap-out"]
    assert ids(LowestCost().order(candidates, long_answer)) == ["cheap-out", "cheap-in"]


def test_lowest_cost_assumes_a_typical_call_and_ties_keep_configured_order() -> None:
    # 1000 in / 256 out: a = 1000*3 + 256*4 = 4024 < b = 1000*1 + 256*12 = 4072.
    candidates = (cand("b", 0, price=(1.0, 12.0)), cand("a", 1, price=(3.0, 4.0)))
    assert ids(LowestCost().order(candidates, RoutingInput())) == ["a", "b"]
    ties = (
        cand("pricey", 0, price=(5.0, 15.0)),
        cand("y", 2, price=(1.0, 2.0)),
        cand("x", 1, price=(1.0, 2.0)),
    )
    assert ids(LowestCost().order(ties, RoutingInput(input_tokens=10))) == ["x", "y", "pricey"]


def test_least_busy_orders_by_in_flight_and_spreads_equal_load() -> None:
    loads = (cand("a", 0, in_flight=7), cand("b", 1, in_flight=0), cand("c", 2, in_flight=3))
    assert ids(LeastBusy(random.Random(1)).order(loads, RoutingInput())) == ["b", "c", "a"]
    strategy = LeastBusy(random.Random(2))
    even = (cand("a", 0, in_flight=2), cand("b", 1, in_flight=2), cand("c", 2, in_flight=5))
    assert all(strategy.order(even, call)[-1].info.id == "c" for call in plain(500))
    counts = firsts(strategy, even, plain(2_000))
    assert counts["c"] == 0
    assert 800 < counts["a"] < 1_200


def test_tags_keeps_candidates_carrying_every_tag() -> None:
    candidates = (
        cand("eu-fast", 2, tags=("eu", "fast")),
        cand("us-fast", 1, tags=("us", "fast")),
        cand("eu-fast-cheap", 0, tags=("eu", "fast", "cheap")),
        cand("eu-slow", 3, tags=("eu",)),
    )
    call = RoutingInput(tags=frozenset({"eu", "fast"}))
    assert ids(Tags().order(candidates, call)) == ["eu-fast-cheap", "eu-fast"]
    assert call.notes == ["tags:matched=2"]
    # None carries both: everyone, in configured order; none asked: everyone, no note.
    call = RoutingInput(tags=frozenset({"eu", "us"}))
    assert ids(Tags().order(candidates, call)) == ["eu-fast-cheap", "us-fast", "eu-fast", "eu-slow"]
    assert call.notes == ["tags:none-matched"]
    call = RoutingInput()
    assert ids(Tags().order(candidates[:2], call)) == ["us-fast", "eu-fast"]
    assert call.notes == []


def test_prefix_affinity_is_stable_per_prefix() -> None:
    candidates = [cand(f"d{i}", i) for i in range(4)]
    seen: set[str] = set()
    for i in range(50):
        prefix = hashlib.blake2b(f"prompt {i}".encode(), digest_size=16).hexdigest()
        call = RoutingInput(prefix=prefix)
        ordered = ids(PrefixAffinity().order(candidates, call))
        assert ordered == ids(PrefixAffinity().order(candidates[::-1], RoutingInput(prefix=prefix)))
        assert call.notes == ["prefix:affinity"]
        # The rest keep configured order for failover.
        assert ordered[1:] == [name for name in ["d0", "d1", "d2", "d3"] if name != ordered[0]]
        seen.add(ordered[0])
    assert len(seen) > 1
    call = RoutingInput()
    assert ids(PrefixAffinity().order(candidates[::-1], call)) == ["d0", "d1", "d2", "d3"]
    assert call.notes == []


def test_prefix_affinity_spreads_across_deployments_by_weight() -> None:
    counts = firsts(PrefixAffinity(), [cand("a", 0), cand("b", 1), cand("c", 2)], prefixes(3_000))
    assert all(850 < counts[name] < 1_150 for name in "abc")
    three = [cand("big", 0, weight=3), cand("small", 1), cand("off", 2, weight=0)]
    counts = firsts(PrefixAffinity(), three, prefixes(4_000))
    assert counts["off"] == 0
    assert counts["big"] / 4_000 == pytest.approx(0.75, abs=0.03)
    all_off = [cand("a", 0, weight=0), cand("b", 1, weight=0)]
    assert set(firsts(PrefixAffinity(), all_off, prefixes(100))) == {"a", "b"}


def test_prompt_prefix_is_none_when_short_and_stable_over_the_opening() -> None:
    assert prompt_prefix([]) is None
    assert prompt_prefix(["You are helpful.", "Hi"]) is None
    assert prompt_prefix(["x" * (MIN_PREFIX_CHARS - 1)]) is None
    # The NUL joining two texts counts towards the opening.
    assert prompt_prefix(["x" * 127, "y" * 128]) is not None
    system = "You are a meticulous assistant. " * 40  # 1280 characters
    first = prompt_prefix([system, "Summarise the following report."])
    assert first is not None
    assert len(first) == 32
    assert prompt_prefix([system, "Summarise the following report."]) == first
    assert prompt_prefix([system, "Translate this into French."]) != first
    long_system = "s" * 3_000  # past `chars`, nothing counts
    assert prompt_prefix([long_system, "one"]) == prompt_prefix([long_system, "two"])
    assert prompt_prefix([long_system, "one"], 4_000) != prompt_prefix([long_system, "two"], 4_000)
    # Where one text ends and the next begins is part of the opening.
    assert prompt_prefix(["a" * 300, "b" * 300]) != prompt_prefix(["a" * 299, "ab" + "b" * 299])


def test_prompt_prefix_matches_the_joined_opening_and_stops_reading() -> None:
    texts = ["system " * 100, "first message " * 100, "second " * 100]
    expected = hashlib.blake2b("\x00".join(texts)[:2048].encode(), digest_size=16).hexdigest()

    def lazily() -> Iterator[str]:
        yield from texts
        raise AssertionError("read past the opening")

    assert prompt_prefix(lazily()) == expected


#: ``models[].routing.strategy`` values (``config.routing``).
CONFIG_NAMES = config_routing.STRATEGIES


def test_make_strategy_covers_every_configured_name_and_only_those() -> None:
    assert set(STRATEGIES) == set(CONFIG_NAMES)
    candidates = (cand("b", 1), cand("a", 0))
    for name in CONFIG_NAMES:
        strategy = make_strategy(name)
        assert strategy.name == name
        ordered = strategy.order(candidates, RoutingInput(sticky="k", prefix="p"))
        assert sorted(ids(ordered)) == ["a", "b"]
    timed = (
        cand("a", 0, ttfb_ewma_ms=100.0, total_ewma_ms=900.0),
        cand("b", 1, ttfb_ewma_ms=200.0, total_ewma_ms=300.0),
    )
    by_total = make_strategy("least_latency", measure="total", rng=random.Random(1))
    assert ids(by_total.order(timed, RoutingInput())) == ["b", "a"]
    with pytest.raises(ValueError, match=r"unknown routing strategy 'fastest'.*least_latency"):
        make_strategy("fastest")
