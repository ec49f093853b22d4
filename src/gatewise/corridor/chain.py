"""The corridor: the steps, in order, around dispatch; one method per operation.

``Corridor.open`` turns a front door's canonical request into a ``Call``: the
model resolved (404 if unknown), the router's plan, the client's own body when
it may be sent on. ``chat``, ``chat_stream`` and ``embeddings`` then run the
story: each step's ``before`` (and ``rewrite_request``) in order, dispatch over
the plan, each step's ``after`` (or the stream tap) in reverse order, and the
``finish`` hooks once the call is over. The steps a chain runs are chosen when
it is built, from the hooks each step overrides, so the hot path loops only
over hooks that act.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from gatewise.core.context import Attempt, RequestContext
from gatewise.core.errors import ModelNotFoundError
from gatewise.core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelCard,
    NativeBody,
)
from gatewise.corridor.call import Call
from gatewise.corridor.dispatch import Dispatch
from gatewise.corridor.observer import Observers
from gatewise.corridor.replay import ReplayStream
from gatewise.corridor.step import Reply, Step, may_change_output, may_change_request, overrides
from gatewise.corridor.tap import StreamTap
from gatewise.corridor.usage import record_chat_usage, record_embedding_usage
from gatewise.providers.base import ChunkStream
from gatewise.routing.catalog import ModelCatalog, Route, Target
from gatewise.routing.router import Router

if TYPE_CHECKING:
    from gatewise.identity.principal import Principal

log = logging.getLogger("gatewise")

R = TypeVar("R", ChatResponse, EmbeddingResponse)
_Entry = Callable[[Call], Awaitable[Reply | None]]


class ModelAccess(Protocol):
    """Who may use which model (``policies.access.ModelAccessPolicy``), for what is not a
    call: listings, model cards, token counts. Calls are checked by the access step."""

    def check(self, principal: Principal, model: str) -> None:
        """Raise ``PermissionDeniedError`` unless ``principal`` may call ``model``."""
        ...

    def may_use(self, principal: Principal, model: str) -> bool: ...


class Lane:
    """One chain of steps: its hooks, sorted by phase when it is built, and what its
    steps allow (raw relay, native pass-through). A corridor has one lane per set of
    steps: the default one, and one per guardrail profile, so a profile's steps cost
    nothing to (and change nothing for) calls that do not run it."""

    __slots__ = (
        "after",
        "dispatch",
        "entry",
        "finishes",
        "name",
        "native_requests",
        "output_steps",
        "relay_raw",
        "steps",
        "watchers",
    )

    def __init__(
        self,
        name: str,
        steps: Sequence[Step],
        observers: Observers,
        clock: Callable[[], float],
        router: Router | None = None,
    ) -> None:
        self.name = name
        self.steps = tuple(steps)
        # Before the call, in step order: (the step's position, its hook).
        self.entry: list[tuple[int, _Entry]] = []
        for index, step in enumerate(self.steps):
            if overrides(step, "before"):
                self.entry.append((index, step.before))
            if overrides(step, "rewrite_request"):
                self.entry.append((index, _rewriting(step)))
        # After the call, in reverse order.
        backwards = list(reversed(list(enumerate(self.steps))))
        self.after = [(index, step) for index, step in backwards if overrides(step, "after")]
        self.watchers = [
            (index, step)
            for index, step in backwards
            if overrides(step, "on_chunks") or overrides(step, "on_stream_end")
        ]
        self.finishes = [step.finish for _index, step in backwards if overrides(step, "finish")]
        #: The steps that may change output: each says per call whether it will.
        self.output_steps = tuple(step for step in self.steps if may_change_output(step))
        #: Raw upstream bytes may reach clients: no step may change output.
        self.relay_raw = not self.output_steps
        #: Clients' own bodies may reach upstreams: no step may rewrite requests.
        self.native_requests = not any(may_change_request(step) for step in self.steps)
        attempt_steps = [step for step in self.steps if overrides(step, "before_attempt")]
        self.dispatch = Dispatch(attempt_steps, observers, clock, router)


#: Picks a call's lane by name from its caller and model (None: the default lane).
LaneChooser = Callable[["Principal | None", str], "str | None"]


class Corridor:
    def __init__(
        self,
        catalog: ModelCatalog,
        steps: Sequence[Step] = (),
        *,
        lanes: Mapping[str, Sequence[Step]] | None = None,
        choose_lane: LaneChooser | None = None,
        router: Router | None = None,
        observers: Observers | None = None,
        access: ModelAccess | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.catalog = catalog
        self.router = router or Router()
        self.observers = observers or Observers()
        self._access = access
        self.default = Lane("default", steps, self.observers, clock, self.router)
        self.lanes = {
            name: Lane(name, lane_steps, self.observers, clock, self.router)
            for name, lane_steps in (lanes or {}).items()
        }
        self._choose = choose_lane if self.lanes else None

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.default.steps

    @property
    def relay_raw(self) -> bool:
        return self.default.relay_raw

    @property
    def native_requests(self) -> bool:
        return self.default.native_requests

    def lane(self, principal: Principal | None, model: str) -> Lane:
        """The lane calls of ``principal`` to ``model`` walk."""
        choose = self._choose
        if choose is None:
            return self.default
        name = choose(principal, model)
        return self.default if name is None else self.lanes.get(name, self.default)

    # --- the catalog, as a caller sees it --------------------------------------------

    def resolve(self, model: str) -> Route:
        """The route of ``model`` (``ModelNotFoundError`` when it is not configured)."""
        return self.catalog.resolve(model)

    def models(self, principal: Principal | None) -> list[ModelCard]:
        """The models ``principal`` may use (all of them when no caller is known)."""
        cards = self.catalog.cards()
        access = self._access
        if principal is None or access is None:
            return cards
        return [card for card in cards if access.may_use(principal, card.id)]

    def model(self, principal: Principal | None, model: str) -> ModelCard:
        """One model's card; a model the caller may not use is not found either."""
        card = self.catalog.resolve(model).card
        access = self._access
        if principal is not None and access is not None and not access.may_use(principal, model):
            raise ModelNotFoundError(model)
        return card

    def authorize(self, principal: Principal | None, model: str) -> None:
        """Raise unless ``principal`` may use ``model`` (for what is not a call)."""
        self.catalog.resolve(model)
        if principal is not None and self._access is not None:
            self._access.check(principal, model)

    def plan(
        self,
        ctx: RequestContext,
        principal: Principal | None,
        request: ChatRequest | EmbeddingRequest,
        route: Route,
    ) -> tuple[Target, ...]:
        """The deployments a call of ``request`` could go to, for what is not a call (token
        counts): the same residency and health rules apply."""
        call = Call(ctx, principal, request, route, (), lane=self.default)
        return self.router.plan(route, call)

    # --- calls ------------------------------------------------------------------------

    def open(
        self,
        ctx: RequestContext,
        principal: Principal | None,
        request: ChatRequest | EmbeddingRequest,
        *,
        route: Route | None = None,
        native: NativeBody | None = None,
        profile: str | None = None,
    ) -> Call:
        """A call of ``request`` (its model resolved unless ``route`` is given); ``profile``
        names the guardrail lane when the front door decides it (a prompt's profile)."""
        ctx.model = request.model
        if isinstance(request, ChatRequest) and request.stream:
            ctx.stream = True  # known from here on (the front door watches a stream at once)
        if route is None:
            route = self.catalog.resolve(request.model)
        if profile is not None:
            lane = self.lanes.get(profile, self.default)
        else:
            lane = self.default if self._choose is None else self.lane(principal, route.name)
        call = Call(
            ctx,
            principal,
            request,
            route,
            (),
            native=native if lane.native_requests else None,
            relay_raw=lane.relay_raw,
            lane=lane,
        )
        call.plan = self.router.plan(route, call)
        if native is not None and not lane.native_requests:
            call.notes[_CLIENT_BODY] = (request, native)
        return call

    async def chat(self, call: Call) -> ChatResponse:
        try:
            reply, upto = await self._enter(call)
            if reply is None:
                response = await call.lane.dispatch.chat(call)
            else:
                response = _expect(reply, ChatResponse)
            record_chat_usage(call, response)
            if call.lane.after and not call.relay_raw:
                response = _expect(await self._leave(call, response, upto), ChatResponse)
            return response
        finally:
            ending = self._end(call)
            if ending is not None:
                await ending

    async def chat_stream(self, call: Call) -> ChunkStream:
        """The call's stream, opened (the upstream answered 200); its chunks flow to the
        front door through the stream tap, which ends the call."""
        attempt: Attempt | None = None
        lane: Lane = call.lane
        try:
            reply, upto = await self._enter(call)
            if reply is None:
                stream, attempt, started = await lane.dispatch.open_stream(call)
            else:
                stream, started = ReplayStream(_expect(reply, ChatResponse)), 0.0
        except BaseException:
            ending = self._end(call)
            if ending is not None:
                await ending
            raise
        watchers = () if call.relay_raw else tuple(s for i, s in lane.watchers if i < upto)

        def end(
            call: Call, attempt: Attempt | None, error: BaseException | None
        ) -> Awaitable[None] | None:
            if attempt is not None:
                lane.dispatch.end(call.ctx, attempt, started, error)
            return self._end(call)

        return StreamTap(call, stream, attempt, watchers, end)

    async def embeddings(self, call: Call) -> EmbeddingResponse:
        try:
            reply, upto = await self._enter(call)
            if reply is None:
                response = await call.lane.dispatch.embed(call)
            else:
                response = _expect(reply, EmbeddingResponse)
            record_embedding_usage(call, response)
            if call.lane.after and not call.relay_raw:
                response = _expect(await self._leave(call, response, upto), EmbeddingResponse)
            return response
        finally:
            ending = self._end(call)
            if ending is not None:
                await ending

    # --- the phases -------------------------------------------------------------------

    async def _enter(self, call: Call) -> tuple[Reply | None, int]:
        """Run the steps' ``before`` hooks; a reply from one (at position ``upto``) answers
        the call: only the steps before it see that reply on its way back."""
        lane: Lane = call.lane
        for index, hook in lane.entry:
            reply = await hook(call)
            if reply is not None:
                call.ctx.decisions.append(f"answered:{lane.steps[index].name}")
                return reply, index
        if not lane.relay_raw or not lane.native_requests:
            _unwatched(call, lane)
        return None, len(lane.steps)

    async def _leave(self, call: Call, reply: Reply, upto: int) -> Reply:
        for index, step in call.lane.after:
            if index < upto:
                reply = await step.after(call, reply)
        return reply

    def _end(self, call: Call) -> Awaitable[None] | None:
        """The call is over: every ``finish`` hook runs, even when one of them fails (a
        failed settlement must not turn a delivered reply into an error). Returns what
        the reply's last bytes must wait for, if a hook returned something to wait for."""
        waits: list[Awaitable[None]] | None = None
        for finish in call.lane.finishes:
            try:
                pending = finish(call)
            except Exception:
                log.exception("a step failed to finish", extra={"request_id": call.ctx.request_id})
                continue
            if pending is not None:
                waits = [pending] if waits is None else [*waits, pending]
        return None if waits is None else _finished(call, waits)


async def _finished(call: Call, waits: list[Awaitable[None]]) -> None:
    """Wait for what the finish hooks started; it goes on if this wait is cancelled (the
    client left), and its failure never fails the reply."""
    for pending in waits:
        try:
            await asyncio.shield(pending)
        except Exception:
            log.exception("a step failed to finish", extra={"request_id": call.ctx.request_id})


#: Where a call keeps the client's own body while a step may still rewrite the request.
_CLIENT_BODY = object()


def _unwatched(call: Call, lane: Lane) -> None:
    """Once the steps have seen the request: what they left alone keeps the fast paths.
    The client's own body goes upstream when no step replaced the request, and the
    upstream's own bytes come back when no step will watch this call's output (each
    step that may change output says so in ``Step.watches``)."""
    kept = call.notes.pop(_CLIENT_BODY, None)
    if kept is not None and kept[0] is call.request:
        call.native = kept[1]
    if not call.relay_raw and not any(step.watches(call) for step in lane.output_steps):
        call.relay_raw = True


def _rewriting(step: Step) -> _Entry:
    async def rewrite(call: Call) -> None:
        await step.rewrite_request(call)

    return rewrite


def _expect(reply: Reply, kind: type[R]) -> R:
    """A reply of the call's kind (a step answering a chat with embeddings is a bug)."""
    if not isinstance(reply, kind):
        raise TypeError(f"a step answered with {type(reply).__name__}, not {kind.__name__}")
    return reply
