"""``FakeUpstream``: the state and lifecycle every fake upstream shares, whatever its wire format.

A subclass adds its routes, credential check and bodies by defining ``handle``
(the HTTP handler), which starts with the bookkeeping inline (no extra call per
request)::

    self.request_count += 1
    if self.record:
        self._recorded.append(RecordedRequest(request))

This module holds the rest: the API key, models, recorded requests, scripted
scenarios, id counter, ``start``/``close``/``async with``, ``url`` and the test
helpers (``script``, ``requests``, ``last_request``, ``reset`` ...).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from gatewise.testing.httpserver import Request, Response
from gatewise.testing.loopback import LoopbackServer
from gatewise.testing.openai_exchange import Exchange
from gatewise.testing.scenario import (
    MARKER_PREFIX,
    MARKER_PREFIX_BYTES,
    Scenario,
    ScenarioQueue,
    parse_markers,
)

__all__ = ["FakeUpstream", "RecordedRequest"]

_MEMO_SIZE = 512


class RecordedRequest:
    """A request as the fake received it; ``json`` is the parsed body (None if not JSON)."""

    __slots__ = ("_json", "body", "headers", "method", "path", "query")

    def __init__(self, request: Request) -> None:
        self.method = request.method
        self.path = request.path
        self.query = request.query
        self.headers = request.headers
        self.body = request.body
        self._json: Any = ...

    @property
    def json(self) -> Any:
        if self._json is ...:
            try:
                self._json = orjson.loads(self.body) if self.body else None
            except orjson.JSONDecodeError:
                self._json = None
        return self._json

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path}>"


class FakeUpstream(LoopbackServer):
    """The shared part of a fake upstream; subclasses define ``handle`` and their routes.

    ``_memo`` maps an answer's inputs to its prepared plan (identical requests get
    identical answers); subclasses narrow its type with a class-level annotation.
    """

    server_name = "the fake upstream"
    _memo: dict[Any, Any]
    _models_body: bytes  # the models list, set by the subclass

    def __init__(
        self,
        api_key: str | None,
        models: Sequence[str],
        stream_chunks: int,
        chunk_delay: float,
        record: bool,
        max_recorded: int,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.models = tuple(models)
        self.stream_chunks = stream_chunks
        self.chunk_delay = chunk_delay
        self.record = record
        self.request_count = 0
        self._recorded: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._scenarios = ScenarioQueue()
        self._ids = itertools.count(1)
        self._memo = {}

    async def handle(self, request: Request, response: Response) -> None:
        """The HTTP handler: record (inline, see the module docstring), route, authenticate,
        then answer."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The root URL ``http://HOST:PORT`` (RuntimeError before ``start``)."""
        return self.root_url

    # -- test helpers ---------------------------------------------------------
    def script(self, *scenarios: Scenario) -> None:
        """Queue scenarios for the next requests, in order (thread-safe)."""
        self._scenarios.push(*scenarios)

    @property
    def open_connections(self) -> int:
        """Client connections open right now (to check a gateway closed its upstream call)."""
        return len(self._server.connections) if self._server is not None else 0

    @property
    def pending_scenarios(self) -> int:
        """How many requests the queued scenarios will still apply to."""
        return len(self._scenarios)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, oldest first (the last ``max_recorded``)."""
        return list(self._recorded.copy())

    @property
    def last_request(self) -> RecordedRequest | None:
        recorded = self._recorded.copy()
        return recorded[-1] if recorded else None

    def reset(self) -> None:
        """Forget recorded requests, queued scenarios and memoized answers."""
        self._recorded.clear()
        self._scenarios.clear()
        self._memo.clear()
        self.request_count = 0

    # -- request handling helpers ----------------------------------------------
    def _parse_markers(self, text: str) -> Scenario | None:
        """The scenario in-band markers spell (MarkerError if unknown); formats may add markers."""
        return parse_markers(text)

    def _scenario(self, request: Request, marker_texts: Callable[[], list[Any]]) -> Scenario | None:
        """The next queued scenario, else the one markers in the texts spell (MarkerError)."""
        scenario = self._scenarios.take()
        if scenario is None and MARKER_PREFIX_BYTES in request.body:
            texts = [t for t in marker_texts() if isinstance(t, str) and MARKER_PREFIX in t]
            if texts:
                scenario = self._parse_markers(" ".join(texts))
        return scenario

    def _remember(self, key: Any, plan: Any) -> None:
        """Memoize a plan (the memo is bounded: it starts over when full)."""
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[key] = plan

    async def _models(self, exchange: Exchange, model: str, *, listing: bool) -> None:
        """Answer the models list (``listing``) or one model, else the format's 404."""
        scenario = self._scenarios.take()
        if scenario is not None and await exchange.misbehave(scenario, model):
            return
        if listing:
            return await exchange.send_ok(self._models_body, scenario)
        if model not in self.models:
            return exchange.send(404, self._unknown_model(exchange, model))
        await exchange.send_ok(self._model_body(model), scenario)

    def _model_body(self, model: str) -> bytes:
        """The format's body for one model."""
        raise NotImplementedError

    def _unknown_model(self, exchange: Exchange, model: str) -> bytes:
        """The format's 404 body for a model it does not serve."""
        raise NotImplementedError
