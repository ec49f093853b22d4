"""/admin/v1/usage: requests, refusals, tokens and cost per tenant, team, app, key, model or
status.

Reading usage takes ``audit:read`` (platform admins, tenant admins, viewers).
A platform admin sees every tenant (or one, with ``tenant_id``); everyone else
only its own tenant's calls, whatever it asks for.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gatewise.admin.authz import Caller, list_tenant, requires
from gatewise.admin.usage_schemas import UsageGroupOut, UsageOut
from gatewise.core.errors import InvalidRequestError
from gatewise.identity.roles import Permission as P
from gatewise.store.usage import (
    GroupBy,
    StatusFilter,
    UsageRepository,
    parse_moment,
    parse_status,
    period,
)

router = APIRouter(prefix="/admin/v1/usage", tags=["usage"])
Reader = Annotated[Caller, Depends(requires(P.AUDIT_READ))]
MOMENT = "ISO-8601 (`2026-11-01`, `2026-11-01T10:00:00Z`; UTC when no zone) or epoch seconds"


@router.get("", summary="Usage and spend, summed per group")
async def usage_summary(
    caller: Reader,
    group_by: Annotated[GroupBy, Query(description="What to sum per")] = "tenant",
    since: Annotated[
        str | None,
        Query(
            alias="from",
            description=MOMENT + "; inclusive (usage is kept per minute: a minute counts when "
            "it overlaps the window). Default: 30 days before `to`",
        ),
    ] = None,
    until: Annotated[
        str | None, Query(alias="to", description=MOMENT + "; exclusive. Default: now")
    ] = None,
    tenant_id: Annotated[
        str | None, Query(description="Only this tenant (others than platform admins: their own)")
    ] = None,
    status: Annotated[
        str | None,
        Query(
            description="Only these calls, comma-separated: `admitted`, `refused`, a status "
            "(`429`) or a class of statuses (`4xx`)",
            examples=["refused", "429", "4xx,5xx"],
        ),
    ] = None,
) -> UsageOut:
    start, end = _window(since, until)
    statuses = _status(status)
    tenant = list_tenant(caller, tenant_id)
    rows = []
    if not tenant.empty:
        repository = UsageRepository(caller.store.database)
        rows = await repository.summary(
            group_by, start, end, tenant_id=tenant.value, status=statuses
        )
    return UsageOut(
        data=[UsageGroupOut.of(row) for row in rows], since=start, until=end, group_by=group_by
    )


def _window(since: str | None, until: str | None) -> tuple[float, float]:
    """The ``[from, to)`` window; a 400 naming the parameter at fault."""
    bounds: dict[str, float | None] = {}
    for name, text in (("from", since), ("to", until)):
        try:
            bounds[name] = None if text is None else parse_moment(text)
        except ValueError as exc:
            raise InvalidRequestError(f"{name}: {exc}.", param=name) from None
    try:
        return period(bounds["from"], bounds["to"], now=time.time())
    except ValueError as exc:
        raise InvalidRequestError(f"from: {exc}.", param="from") from None


def _status(text: str | None) -> StatusFilter | None:
    """The ``status`` filter; a 400 naming it."""
    try:
        return None if text is None else parse_status(text)
    except ValueError as exc:
        raise InvalidRequestError(f"status: {exc}.", param="status") from None
