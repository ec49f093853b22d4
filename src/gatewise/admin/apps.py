"""/admin/v1/apps: service accounts, what programs call as (developers: their own team's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from gatewise.admin.authz import (
    Caller,
    check_app_write,
    check_grant,
    check_team_write,
    fetch,
    list_tenant,
    object_tenant,
    requires,
    team_in,
)
from gatewise.admin.schemas import (
    AppCreate,
    AppOut,
    AppUpdate,
    Limit,
    Offset,
    PageOut,
    empty_page,
    page_of,
)
from gatewise.identity.records import Status
from gatewise.identity.roles import Permission as P

router = APIRouter(prefix="/admin/v1/apps", tags=["apps"])
Reader = Annotated[Caller, Depends(requires(P.APPS_READ))]
Writer = Annotated[Caller, Depends(requires(P.APPS_WRITE))]


@router.get("", summary="List apps")
async def list_apps(
    caller: Reader,
    tenant_id: str | None = None,
    team_id: str | None = None,
    name: str | None = None,
    status: Status | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PageOut[AppOut]:
    tenant = list_tenant(caller, tenant_id)
    if tenant.empty:
        return empty_page(limit, offset)
    page = await caller.store.list_apps(
        tenant_id=tenant.value,
        team_id=team_id,
        name=name,
        status=status,
        limit=limit,
        offset=offset,
    )
    return page_of(page, AppOut.of)


@router.post("", status_code=201, summary="Create an app")
async def create_app(caller: Writer, body: AppCreate) -> AppOut:
    team = await team_in(caller, body.team_id, body.tenant_id) if body.team_id else None
    tenant_id = object_tenant(caller, body.tenant_id, team)
    await fetch(caller, caller.store.get_tenant, tenant_id, "tenant", param="tenant_id")
    check_team_write(caller, body.team_id)
    check_grant(caller, body.role)
    app = await caller.store.create_app(
        caller.actor,
        tenant_id=tenant_id,
        name=body.name,
        team_id=body.team_id,
        role=body.role,
        allowed_models=body.allowed_models,
    )
    return AppOut.of(app)


@router.get("/{app_id}", summary="One app")
async def get_app(caller: Reader, app_id: str) -> AppOut:
    return AppOut.of(await fetch(caller, caller.store.get_app, app_id, "app"))


@router.patch("/{app_id}", summary="Change an app (name, team, role, models, status)")
async def update_app(caller: Writer, app_id: str, body: AppUpdate) -> AppOut:
    app = await fetch(caller, caller.store.get_app, app_id, "app")
    check_app_write(caller, app)
    changes = body.model_dump(exclude_unset=True)
    if "team_id" in changes:
        if changes["team_id"] is not None:
            await team_in(caller, changes["team_id"], app.tenant_id)
        check_team_write(caller, changes["team_id"])
    if "role" in changes:
        check_grant(caller, changes["role"])
    return AppOut.of(await caller.store.update_app(caller.actor, app_id, **changes))


@router.delete("/{app_id}", status_code=204, summary="Delete an app (revokes its keys)")
async def delete_app(caller: Writer, app_id: str) -> Response:
    app = await fetch(caller, caller.store.get_app, app_id, "app")
    check_app_write(caller, app)
    await caller.store.delete_app(caller.actor, app_id)
    return Response(status_code=204)
