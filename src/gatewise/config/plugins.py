"""Installed plug-ins: Python entry points, looked up only when needed and then cached.

A plug-in is an installed distribution that declares an entry point in one of
gatewise's groups (``gatewise.providers``: see ``gatewise.providers.registry``).
Listing entry points reads every installed distribution's metadata (tens of
milliseconds), so callers look them up only for a name that is not built in,
and the answers are kept for the life of the process. ``clear_cache`` forgets
them: for tests, or after installing a plug-in into a running interpreter.

This module lives in ``config/`` because validating a config is the first thing
that meets a plug-in's name; it imports nothing from gatewise.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

__all__ = ["PluginError", "clear_cache", "entry_point_names", "load_entry_point"]


class PluginError(Exception):
    """An installed plug-in could not be loaded, or is not what its group expects."""


@functools.cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=group):
        found.setdefault(entry.name, entry)  # the first on sys.path wins, as for imports
    return found


def entry_point_names(group: str) -> list[str]:
    """Names of the installed entry points of ``group``, sorted; nothing is imported."""
    return sorted(_entry_points(group))


@functools.cache
def load_entry_point(group: str, name: str) -> object:
    """The object the entry point ``name`` of ``group`` refers to (its module is imported).

    Raises ``LookupError`` when no such entry point is installed and ``PluginError``
    when importing it fails (the message names the entry point and the cause).
    """
    entry = _entry_points(group).get(name)
    if entry is None:
        raise LookupError(name)
    try:
        return entry.load()
    except Exception as exc:  # a plug-in's import may fail in any way; report, don't crash
        raise PluginError(
            f"the plug-in {name!r} ({entry.value}) could not be loaded: {type(exc).__name__}: {exc}"
        ) from exc


def clear_cache() -> None:
    """Forget the entry points found and loaded so far."""
    _entry_points.cache_clear()
    load_entry_point.cache_clear()
