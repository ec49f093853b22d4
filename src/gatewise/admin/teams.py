"""/admin/v1/teams: groups of apps and users inside a tenant (written by tenant admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from gatewise.admin.authz import Caller, creation_tenant, fetch, list_tenant, requires
from gatewise.admin.schemas import (
    Limit,
    Offset,
    PageOut,
    TeamCreate,
    TeamOut,
    TeamUpdate,
    empty_page,
    page_of,
)
from gatewise.core.errors import InvalidRequestError
from gatewise.identity.roles import Permission as P

router = APIRouter(prefix="/admin/v1/teams", tags=["teams"])
Reader = Annotated[Caller, Depends(requires(P.TEAMS_READ))]
Writer = Annotated[Caller, Depends(requires(P.TEAMS_WRITE))]


@router.get("", summary="List teams")
async def list_teams(
    caller: Reader,
    tenant_id: str | None = None,
    name: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PageOut[TeamOut]:
    tenant = list_tenant(caller, tenant_id)
    if tenant.empty:
        return empty_page(limit, offset)
    page = await caller.store.list_teams(
        tenant_id=tenant.value, name=name, limit=limit, offset=offset
    )
    return page_of(page, TeamOut.of)


@router.post("", status_code=201, summary="Create a team")
async def create_team(caller: Writer, body: TeamCreate) -> TeamOut:
    tenant_id = creation_tenant(caller, body.tenant_id)
    if tenant_id is None:
        raise InvalidRequestError("Missing required parameter: 'tenant_id'.", param="tenant_id")
    await fetch(caller, caller.store.get_tenant, tenant_id, "tenant", param="tenant_id")
    team = await caller.store.create_team(
        caller.actor, tenant_id=tenant_id, name=body.name, allowed_models=body.allowed_models
    )
    return TeamOut.of(team)


@router.get("/{team_id}", summary="One team")
async def get_team(caller: Reader, team_id: str) -> TeamOut:
    return TeamOut.of(await fetch(caller, caller.store.get_team, team_id, "team"))


@router.patch("/{team_id}", summary="Rename a team or change its model allow-list")
async def update_team(caller: Writer, team_id: str, body: TeamUpdate) -> TeamOut:
    await fetch(caller, caller.store.get_team, team_id, "team")
    changes = body.model_dump(exclude_unset=True)
    return TeamOut.of(await caller.store.update_team(caller.actor, team_id, **changes))


@router.delete("/{team_id}", status_code=204, summary="Delete a team without apps or users")
async def delete_team(caller: Writer, team_id: str) -> Response:
    await fetch(caller, caller.store.get_team, team_id, "team")
    await caller.store.delete_team(caller.actor, team_id)
    return Response(status_code=204)
