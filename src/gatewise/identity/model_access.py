"""Which models a caller may use: the intersection of allow-lists along its chain.

Each level (tenant, team, app or user, key, OIDC rule) may hold a list of model
names or glob patterns; None means that level does not restrict. A model is
allowed when every level allows it. Answers are memoised per model, so the
hot path pays for the globs once per (caller, model), not per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

_MEMO_LIMIT = 256


class ModelAccess:
    __slots__ = ("_levels", "_memo")

    def __init__(self, levels: Iterable[Sequence[str] | None] = ()) -> None:
        self._levels: tuple[tuple[str, ...], ...] = tuple(
            tuple(level) for level in levels if level is not None
        )
        self._memo: dict[str, bool] = {}

    @property
    def unrestricted(self) -> bool:
        return not self._levels

    def allows(self, model: str) -> bool:
        answer = self._memo.get(model)
        if answer is None:
            answer = all(_level_allows(level, model) for level in self._levels)
            if len(self._memo) < _MEMO_LIMIT:
                self._memo[model] = answer
        return answer

    def narrowed(self, level: Sequence[str] | None) -> ModelAccess:
        """This access further limited by one more allow-list."""
        return ModelAccess((*self._levels, level))


def _level_allows(level: tuple[str, ...], model: str) -> bool:
    return any(
        pattern == model or (("*" in pattern or "?" in pattern) and fnmatchcase(model, pattern))
        for pattern in level
    )


UNRESTRICTED = ModelAccess()
