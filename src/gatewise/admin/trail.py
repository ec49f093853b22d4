"""What an admin request leaves behind, settled before its answer goes out.

* **A change** (a 2xx answer to anything but GET/HEAD) refreshes this process's identity
  cache first, so a key made, revoked or demoted here holds on the very next request to
  this process; other processes and replicas follow with their poll, as before.
* **A refusal** is written to the audit trail (action ``refuse``): every 401 and 403, and
  every 404 on an object that exists in a tenant the caller may not see. The entry names
  the caller (``unauthenticated`` without a valid credential), what was attempted
  (method, path, status, the refusal's message, the client address: never a credential or
  a body) and the request id. A cross-tenant 404 goes to the platform's trail
  (``tenant_id`` null), so the prober's tenant cannot tell it from a missing id; a 403 to
  the caller's own tenant's. Refusals are recorded at most ``REFUSALS_PER_SECOND`` per
  process on average (bursts of ``REFUSAL_BURST``), so a flood of bad credentials cannot
  flood the database; what is dropped is counted in a warning.
* **The access log** (``server.access_log``): one line per admin request, like the model
  API's: method, path (no query string), status, duration, caller and request id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

from gatewise.identity.principal import Principal
from gatewise.identity.records import Actor
from gatewise.store.identity import IdentityStore

log = logging.getLogger("gatewise.admin")

REFUSALS_PER_SECOND = 10.0
REFUSAL_BURST = 100.0
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The path's collection -> the audit trail's object type.
_OBJECT_TYPES = {
    "tenants": "tenant",
    "teams": "team",
    "apps": "app",
    "users": "user",
    "keys": "key",
    "subscriptions": "subscription",
    "audit": "audit",
    "usage": "usage",
    "me": "me",
}
_V1 = "/admin/v1/"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused request, noted by the error handlers for ``Trail`` to record."""

    status: int
    message: str
    object_type: str | None = None  # set for a hidden object (a cross-tenant 404)
    object_id: str | None = None


def note_principal(request: Request, principal: Principal) -> None:
    request.state.principal = principal


def note_refusal(request: Request, refusal: Refusal) -> None:
    request.state.refusal = refusal


class Trail:
    def __init__(
        self,
        store: IdentityStore,
        changed: Callable[[], Awaitable[object]] | None,
        access_log: Callable[[], bool],
        *,
        refusals_per_second: float = REFUSALS_PER_SECOND,
        refusal_burst: float = REFUSAL_BURST,
    ) -> None:
        self._store = store
        self._changed = changed
        self._access_log = access_log
        self._rate = refusals_per_second
        self._burst = refusal_burst
        self._tokens = refusal_burst
        self._filled_at = time.monotonic()
        self._dropped = 0

    async def before_answer(self, scope: Scope, status: int) -> None:
        """Record a refusal, or refresh the identity cache after a change (never raises)."""
        state: dict[str, Any] = scope.get("state", {})
        refusal = state.get("refusal")
        try:
            if isinstance(refusal, Refusal) and refusal.status == status:
                await self._record(scope, state, refusal)
            elif self._changed is not None and 200 <= status < 300 and _writes(scope):
                await self._changed()
        except Exception:
            log.exception("admin request %s %s: its trail failed", scope["method"], scope["path"])

    def finished(self, scope: Scope, status: int, started: float) -> None:
        if not self._access_log():
            return
        state = scope.get("state", {})
        principal = state.get("principal")
        elapsed = (time.perf_counter() - started) * 1000
        log.info(
            "%s %s %s %.1fms",
            scope["method"],
            scope["path"],
            status,
            elapsed,
            extra={
                "request_id": state.get("request_id"),
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round(elapsed, 1),
                "caller": principal.name if isinstance(principal, Principal) else None,
                "tenant_id": principal.tenant_id if isinstance(principal, Principal) else None,
            },
        )

    async def _record(self, scope: Scope, state: dict[str, Any], refusal: Refusal) -> None:
        if not self._take_token():
            return
        found = state.get("principal")
        principal = found if isinstance(found, Principal) else None
        actor = Actor(
            name=principal.name if principal else "unauthenticated",
            tenant_id=principal.tenant_id if principal else None,
            request_id=state.get("request_id"),
        )
        path: str = scope["path"]
        parts = path.removeprefix(_V1).split("/") if path.startswith(_V1) else []
        object_type = refusal.object_type or _OBJECT_TYPES.get(parts[0] if parts else "", "admin")
        object_id = refusal.object_id or (parts[1] if len(parts) > 1 else "")
        # A probe of another tenant's object is the platform's business alone; a 403 is
        # also the caller's own tenant's.
        hidden = refusal.object_type is not None
        client = scope.get("client")
        await self._store.record_refusal(
            actor,
            object_type=object_type,
            object_id=object_id,
            tenant_id=None if hidden or principal is None else principal.tenant_id,
            attempt={
                "method": scope["method"],
                "path": path[:512],
                "status": refusal.status,
                "message": refusal.message[:512],
                "client": client[0] if client else None,
            },
        )

    def _take_token(self) -> bool:
        """A token bucket: ``REFUSALS_PER_SECOND`` on average, ``REFUSAL_BURST`` at once."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._filled_at) * self._rate)
        self._filled_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            if self._dropped:
                log.warning("%d refused admin requests were not audited (too many)", self._dropped)
                self._dropped = 0
            return True
        self._dropped += 1
        return False


def _writes(scope: Scope) -> bool:
    return scope.get("method") not in _READS
