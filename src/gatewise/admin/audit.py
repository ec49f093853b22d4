"""/admin/v1/audit: who changed what, newest first (others than platform admins: their tenant).

Refused requests are in it too (action ``refuse``, see ``trail.py``): a 403 in the caller's
tenant's trail, a 401 or a probe of another tenant's object in the platform's only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gatewise.admin.authz import Caller, list_tenant, requires
from gatewise.admin.schemas import (
    AuditOut,
    Limit,
    Offset,
    PageOut,
    empty_page,
    moment_query,
    page_of,
)
from gatewise.identity.roles import Permission as P

router = APIRouter(prefix="/admin/v1/audit", tags=["audit"])
Reader = Annotated[Caller, Depends(requires(P.AUDIT_READ))]


@router.get("", summary="The audit trail, newest first")
async def list_audit(
    caller: Reader,
    tenant_id: str | None = None,
    action: str | None = Query(
        None,
        description="create, update, delete, revoke, rotate, request, approve, reject, or "
        "refuse: a refused request (401, 403, or 404 on another tenant's object; `after` "
        "holds the method, path, status and message); guardrail_block: a call a guardrail "
        "blocked (never its text); config_load / config_reject: a worker's config",
    ),
    object_type: str | None = Query(None, description="tenant, team, app, user, key, ..."),
    object_id: str | None = None,
    actor: str | None = Query(None, description="e.g. key:key_abc"),
    since: float | None = moment_query(", inclusive"),
    until: float | None = moment_query(", exclusive"),
    limit: Limit = 50,
    offset: Offset = 0,
) -> PageOut[AuditOut]:
    tenant = list_tenant(caller, tenant_id)
    if tenant.empty:
        return empty_page(limit, offset)
    page = await caller.store.list_audit(
        tenant_id=tenant.value,
        action=action,
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return page_of(page, AuditOut.of)
