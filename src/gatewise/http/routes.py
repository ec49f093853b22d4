"""The route table: paths (with parameters) to handlers, and the error format of each.

Paths are written like ``/v1/models/{model:path}`` or
``/v2/models/{name}/versions/{version}/infer``: ``{name}`` matches one path
segment, ``{name:path}`` the rest of the path (model ids may hold slashes).
Static paths are found with one dict lookup; patterns are tried in the order
they were added. A matched route's parameters land on ``request.params``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gatewise.core.errors import GatewayError
from gatewise.http.asgi import NO_PARAMS, HTTPRequest, Send

Handler = Callable[[HTTPRequest, Send], Awaitable[None]]
Params = Mapping[str, str]


class ErrorFormat(Protocol):
    """What a route needs of its front door beyond its handlers: its error format."""

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The handlers of one path by method, and the front door whose error format it speaks.

    Every endpoint authenticates its caller before the handler runs, unless ``public``.
    """

    methods: dict[str, Handler]
    errors: ErrorFormat
    public: bool = False


@dataclass(frozen=True, slots=True)
class _Pattern:
    segments: tuple[str, ...]  # literal segments, or "" where a parameter goes
    names: tuple[str | None, ...]  # the parameter of each segment (None: literal)
    rest: str | None  # the {name:path} parameter taking the remaining segments
    endpoint: Endpoint = field(compare=False)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        count = len(self.segments)
        if len(parts) < count or (self.rest is None and len(parts) != count):
            return None
        params: dict[str, str] = {}
        for part, literal, name in zip(parts, self.segments, self.names, strict=False):
            if name is None:
                if part != literal:
                    return None
            elif not part:
                return None
            else:
                params[name] = part
        if self.rest is not None:
            tail = "/".join(parts[count:])
            if not tail:
                return None
            params[self.rest] = tail
        return params


class RouteTable:
    def __init__(self, routes: Iterable[tuple[str, Endpoint]] = ()) -> None:
        # Static paths map straight to what ``match`` returns (no tuple per request).
        self._static: dict[str, tuple[Endpoint, Params]] = {}
        self._patterns: list[_Pattern] = []
        for path, endpoint in routes:
            self.add(path, endpoint)

    def add(self, path: str, endpoint: Endpoint) -> None:
        if not path.startswith("/"):
            raise ValueError(f"a route path starts with '/': {path}")
        if "{" not in path:
            if path in self._static:
                raise ValueError(f"two routes for {path}")
            self._static[path] = (endpoint, NO_PARAMS)
            return
        self._patterns.append(_compile(path, endpoint))

    def match(self, path: str) -> tuple[Endpoint, Params] | None:
        """The endpoint of ``path`` and its parameters, or None."""
        found = self._static.get(path)
        if found is not None:
            return found
        parts = path[1:].split("/")
        for pattern in self._patterns:
            params = pattern.match(parts)
            if params is not None:
                return pattern.endpoint, params
        return None


def _compile(path: str, endpoint: Endpoint) -> _Pattern:
    segments: list[str] = []
    names: list[str | None] = []
    rest = None
    parts = path[1:].split("/")
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("}"):
            name, _, kind = part[1:-1].partition(":")
            if not name.isidentifier() or kind not in ("", "path"):
                raise ValueError(f"bad path parameter {part!r} in {path}")
            if kind == "path":
                if index != len(parts) - 1:
                    raise ValueError(f"{{{name}:path}} must end the path: {path}")
                rest = name
                break
            segments.append("")
            names.append(name)
        elif "{" in part or "}" in part:
            raise ValueError(f"a parameter must be a whole path segment: {path}")
        else:
            segments.append(part)
            names.append(None)
    return _Pattern(tuple(segments), tuple(names), rest, endpoint)
