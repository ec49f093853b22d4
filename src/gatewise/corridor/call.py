"""A ``Call``: one model call on its way through the corridor.

The front door makes it (``Corridor.open``) from the canonical request; every
step and dispatch read and write it. ``ctx`` is the request's record (what
observers see); the rest is what the steps need to decide: who calls
(``principal``), what (``request``), where it may go (``route``, ``plan``) and,
when the client's own body can be sent upstream as it is, that body (``native``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewise.core.context import RequestContext
from gatewise.core.tokens import admission_count_request, heuristic_count
from gatewise.core.types import ChatRequest, EmbeddingRequest, NativeBody
from gatewise.routing.catalog import Route, Target

if TYPE_CHECKING:
    from gatewise.corridor.chain import Lane
    from gatewise.identity.principal import Principal


class Call:
    """One model call: the request, its route and plan, and each step's notes on it."""

    __slots__ = (
        "_prompt_tokens",
        "ctx",
        "lane",
        "model",
        "native",
        "notes",
        "plan",
        "principal",
        "relay_raw",
        "request",
        "route",
        "target",
    )

    def __init__(
        self,
        ctx: RequestContext,
        principal: Principal | None,
        request: ChatRequest | EmbeddingRequest,
        route: Route,
        plan: tuple[Target, ...],
        *,
        native: NativeBody | None = None,
        relay_raw: bool = True,
        lane: Lane,
    ) -> None:
        self.ctx = ctx
        self.principal = principal
        self.request = request
        self.route = route
        #: The public model name the client asked for.
        self.model = route.name
        #: The deployments to try, in order (the router's decision).
        self.plan = plan
        #: The client's own body, for a provider of the same wire format (None once a
        #: step may rewrite requests: the canonical request is then the truth).
        self.native = native
        #: Whether the upstream's own bytes may go to the client as they are: False as
        #: soon as a step of the corridor may inspect or change output.
        self.relay_raw = relay_raw
        #: The deployment that answered (set by dispatch when an attempt succeeds; None
        #: until then, or when a step answered): a front door asks it which wire format
        #: a stream's raw bytes are in before it writes the first one.
        self.target: Target | None = None
        #: Each step's state for this call, keyed by the step (e.g. what admission charged).
        self.notes: dict[object, Any] = {}
        #: The chain of steps this call walks (``Corridor.open`` picks it).
        self.lane = lane
        self._prompt_tokens = -1

    def prompt_tokens(self) -> int:
        """The request's input tokens, counted once (the byte heuristic: microseconds,
        the same on every replica) for admission, stream headers and usage estimates."""
        if self._prompt_tokens < 0:
            request = self.request
            if isinstance(request, ChatRequest):
                self._prompt_tokens = admission_count_request(request)
            else:
                self._prompt_tokens = embedding_tokens(request)
        return self._prompt_tokens


def embedding_tokens(request: EmbeddingRequest) -> int:
    """The tokens of an embeddings input, estimated (token-id inputs are exact)."""
    value = request.input
    if isinstance(value, str):
        return heuristic_count(value)
    return sum(
        heuristic_count(item)
        if isinstance(item, str)
        else (1 if isinstance(item, int) else len(item))
        for item in value
    )
