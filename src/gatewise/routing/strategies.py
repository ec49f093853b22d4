"""Routing strategies: how a model's available deployments are ordered for one call.

Each strategy returns a new list: the first candidate is tried first, the rest are
the failover order. ``order`` runs on every request, so each is a few sorts and
comparisons at most; the strategies that break ties at random take a
``random.Random`` so tests can seed them.

Sticky ``weighted`` and ``prefix_affinity`` use weighted rendezvous hashing: each
(key, deployment) pair gets a stable score and the lowest wins. Over many keys each
deployment wins in proportion to its weight, and adding or removing a deployment
moves only the keys that pick (or picked) it, so sessions and prompt caches stay put.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter, itemgetter
from typing import Literal

from gatewise.routing.types import Candidate, HealthView, RoutingInput, RoutingStrategy

#: Shared by every strategy not handed its own generator.
_RNG = random.Random()
if sys.platform != "win32":
    # Forked workers would otherwise draw the same sequence and pick in lockstep.
    os.register_at_fork(after_in_child=_RNG.seed)

_INV_TWO_64 = 1.0 / 2**64

#: A prompt opening shorter than this gains nothing from provider prompt caching.
MIN_PREFIX_CHARS = 256

#: ``lowest_cost`` when the call says nothing of its size: still ranks input against
#: output prices sensibly for a typical chat call.
DEFAULT_INPUT_TOKENS = 1000
DEFAULT_OUTPUT_TOKENS = 256


_position = attrgetter("position")


def _configured(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Configured order; candidates nearly always arrive in it, so check before sorting."""
    previous = -1
    for candidate in candidates:
        if candidate.position < previous:
            return sorted(candidates, key=_position)
        previous = candidate.position
    return list(candidates)


def _rendezvous_scores(
    key: str, candidates: Sequence[Candidate], weighted: bool
) -> list[tuple[float, int]]:
    """(score, index) per candidate: score = -log(u)/weight, u in (0, 1) stable per (key,
    deployment id). The lowest score wins, and over many keys a deployment wins a share
    proportional to its weight (the minimum of exponential races). Weight 0 scores
    infinity (never first); the index breaks its ties."""
    # The key's hash state once, copied per deployment: same digest as hashing
    # f"{key}\x00{id}", for a fraction of the cost.
    base = hashlib.blake2b(key.encode("utf-8", "surrogatepass") + b"\x00", digest_size=8)
    log, from_bytes = math.log, int.from_bytes
    scores: list[tuple[float, int]] = []
    for index, candidate in enumerate(candidates):
        info = candidate.info
        weight = info.weight if weighted else 1
        if weight <= 0:
            scores.append((math.inf, index))
            continue
        state = base.copy()
        state.update(info.id.encode("utf-8", "surrogatepass"))
        # +0.5 keeps u off 0 (log(0) fails); u may round up to 1.0 (score 0: fine).
        u = (from_bytes(state.digest(), "big") + 0.5) * _INV_TWO_64
        scores.append((log(u) / -weight, index))
    return scores


def prompt_prefix(texts: Iterable[str], chars: int = 2048) -> str | None:
    """Digest of the prompt's opening (texts joined with NUL), the affinity key of
    ``prefix_affinity``; None when the opening is too short to be worth caching.

    Stops reading once ``chars`` characters are in hand: a long conversation costs no
    more than a short one."""
    parts: list[str] = []
    size = 0
    for text in texts:
        if parts:
            parts.append("\x00")
            size += 1
        parts.append(text)
        size += len(text)
        if size >= chars:
            break
    opening = "".join(parts)[:chars]
    if len(opening) < MIN_PREFIX_CHARS:
        return None
    return hashlib.blake2b(opening.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class Failover:
    """The configured order: predictable, and the cheapest possible (the default)."""

    __slots__ = ()
    name: str = "failover"

    def order(self, candidates: Sequence[Candidate], call: RoutingInput) -> list[Candidate]:
        return _configured(candidates)


def _by_weight(candidate: Candidate) -> tuple[int, int]:
    return (-candidate.info.weight, candidate.position)


class Weighted:
    """Canary and A/B splits: the first pick is proportional to weight (weight 0: never
    first while another has weight); a sticky call always gets the same pick."""

    __slots__ = ("_rng",)
    name: str = "weighted"

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else _RNG

    def order(self, candidates: Sequence[Candidate], call: RoutingInput) -> list[Candidate]:
        if call.sticky is not None:
            call.notes.append("weighted:sticky")
            return _rendezvous(candidates, call.sticky)
        call.notes.append("weighted:random")
        ranked = sorted(candidates, key=_by_weight)
        total = sum(candidate.info.weight for candidate in ranked)
        if total <= 0:
            # Every weight 0 (the weighted ones are down or drained): plain failover.
            return _configured(candidates)
        point = self._rng.random() * total
        for index, candidate in enumerate(ranked):
            point -= candidate.info.weight
            if point < 0:
                if index:
                    ranked.insert(0, ranked.pop(index))
                break
        return ranked


def _rendezvous(candidates: Sequence[Candidate], key: str) -> list[Candidate]:
    """All candidates by weighted rendezvous score for ``key``; equal scores (weight 0)
    keep configured order, so all weights 0 is plain failover."""
    ordered = _configured(candidates)
    scores = _rendezvous_scores(key, ordered, weighted=True)
    scores.sort()
    return [ordered[index] for _, index in scores]


_MEASURES: dict[str, Callable[[HealthView], float | None]] = {
    "ttfb": attrgetter("ttfb_ewma_ms"),
    "total": attrgetter("total_ewma_ms"),
}


class LeastLatency:
    """Fastest first. Unmeasured deployments go first so each gets measured; latencies
    within ``tolerance`` of the best count as equal and are shuffled, so two equally
    fast deployments share the load instead of one taking every call on noise."""

    __slots__ = ("_measure", "_rng", "_tolerance")
    name: str = "least_latency"

    def __init__(
        self,
        measure: Literal["ttfb", "total"] = "ttfb",
        tolerance: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        if measure not in _MEASURES:
            raise ValueError(f"least_latency: measure must be 'ttfb' or 'total', not {measure!r}")
        if tolerance < 0:
            raise ValueError(f"least_latency: tolerance must be >= 0, not {tolerance!r}")
        self._measure = _MEASURES[measure]
        self._tolerance = tolerance
        self._rng = rng if rng is not None else _RNG

    def order(self, candidates: Sequence[Candidate], call: RoutingInput) -> list[Candidate]:
        unmeasured: list[Candidate] = []
        measured: list[tuple[float, Candidate]] = []
        for candidate in _configured(candidates):
            latency = self._measure(candidate.health)
            if latency is None:
                unmeasured.append(candidate)
            else:
                measured.append((latency, candidate))
        if unmeasured:
            call.notes.append("least_latency:explore")
        measured.sort(key=itemgetter(0))  # stable: equal latencies keep configured order
        if len(measured) > 1:
            limit = measured[0][0] * (1.0 + self._tolerance)
            ties = 1
            while ties < len(measured) and measured[ties][0] <= limit:
                ties += 1
            if ties > 1:
                head = measured[:ties]
                self._rng.shuffle(head)
                measured[:ties] = head
        unmeasured.extend(c for _, c in measured)
        return unmeasured


class LowestCost:
    """Cheapest for this call's tokens first (unknown prices count as 0: cheapest)."""

    __slots__ = ()
    name: str = "lowest_cost"

    def order(self, candidates: Sequence[Candidate], call: RoutingInput) -> list[Candidate]:
        input_tokens, output_tokens = call.input_tokens, call.output_tokens
        if input_tokens == 0 and output_tokens == 0:
            input_tokens, output_tokens = DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS

        def cost(candidate: Candidate) -> tuple[float, int]:
            info = candidate.info
            price = input_tokens * info.input_per_million + output_tokens * info.output_per_million
            return (price, candidate.position)

        return sorted(candidates, key=cost)


class LeastBusy:
    """Fewest calls in flight first; equal load is shuffled so it stays equal."""

    __slots__ = ("_rng",)
    name: str = "least_busy"

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else _RNG

    def order(self, candidates: Sequence[Candidate], call: RoutingInput) -> list[Candidate]:
        draw = self._rng.random

        def load(candidate: Candidate) -> tuple[int, float]:
            return (candidate.health.in_flight, draw())

        return sorted(candidates, key=load)


class Tags:
    """Only deployments carrying every asked tag, in configured order; when none
    carries them all, every deployment (a tag is a preference, not a refusal)."""

    __slots__ = ()
    name: str = "tags"

    def order(self, candidates: Sequence[Candidate], call: RoutingInput) -> list[Candidate]:
        wanted = call.tags
        if not wanted:
            return _configured(candidates)
        matched = [c for c in candidates if wanted <= c.info.tags]
        if not matched:
            call.notes.append("tags:none-matched")
            return _configured(candidates)
        call.notes.append(f"tags:matched={len(matched)}")
        return _configured(matched)


class PrefixAffinity:
    """Calls sharing a prompt opening go first to one deployment (by weighted
    rendezvous), so its provider's prompt cache keeps hitting; the rest keep
    configured order for failover."""

    __slots__ = ()
    name: str = "prefix_affinity"

    def order(self, candidates: Sequence[Candidate], call: RoutingInput) -> list[Candidate]:
        ordered = _configured(candidates)
        prefix = call.prefix
        if prefix is None or len(ordered) < 2:
            return ordered
        call.notes.append("prefix:affinity")
        best, best_index = min(_rendezvous_scores(prefix, ordered, weighted=True))
        if best == math.inf:
            # All weight 0: no weight to honour, so an equal split rather than none.
            best, best_index = min(_rendezvous_scores(prefix, ordered, weighted=False))
        if best_index:
            ordered.insert(0, ordered.pop(best_index))
        return ordered


#: Strategy constructors by the name ``models[].routing.strategy`` uses.
STRATEGIES: dict[str, Callable[..., RoutingStrategy]] = {
    Failover.name: Failover,
    Weighted.name: Weighted,
    LeastLatency.name: LeastLatency,
    LowestCost.name: LowestCost,
    LeastBusy.name: LeastBusy,
    Tags.name: Tags,
    PrefixAffinity.name: PrefixAffinity,
}


def make_strategy(name: str, **options: object) -> RoutingStrategy:
    """The strategy the config names, built with ``options`` (``measure``, ``rng`` ...)."""
    factory = STRATEGIES.get(name)
    if factory is None:
        known = ", ".join(STRATEGIES)
        raise ValueError(f"unknown routing strategy {name!r} (known: {known})")
    return factory(**options)
