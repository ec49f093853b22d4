"""Which version of a prompt answers an unpinned call: a weighted canary.

Weights are read once per generation into cumulative sums; a pick is one random
number and one bisection (or none when a single version serves). ``sticky`` picks
by a hash of the caller's key instead, so one caller sees one version throughout
a rollout (and a prompt engineer can reason about a complaint).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Generic, TypeVar
from zlib import crc32

V = TypeVar("V")


class Rollout(Generic[V]):
    __slots__ = ("_bounds", "_only", "_random", "_sticky", "_total", "_versions")

    def __init__(
        self,
        versions: Sequence[V],
        weights: Sequence[int],
        *,
        sticky: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        chosen = [(v, w) for v, w in zip(versions, weights, strict=True) if w > 0]
        if not chosen:
            raise ValueError("a rollout needs a version with a weight above 0")
        self._versions = tuple(v for v, _w in chosen)
        self._bounds = list(accumulate(w for _v, w in chosen))
        self._total = self._bounds[-1]
        self._only = self._versions[0] if len(chosen) == 1 else None
        self._sticky = sticky
        self._random = (rng or random.Random()).random

    @property
    def versions(self) -> tuple[V, ...]:
        return self._versions

    def pick(self, key: str | None = None) -> V:
        only = self._only
        if only is not None:
            return only
        if self._sticky and key is not None:
            point = crc32(key.encode()) % self._total
        else:
            point = int(self._random() * self._total)
        return self._versions[bisect_right(self._bounds, point)]
