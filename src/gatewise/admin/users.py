"""/admin/v1/users: people (for their own keys and OIDC mapping), managed by tenant admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from gatewise.admin.authz import (
    Caller,
    check_grant,
    check_manage,
    creation_tenant,
    fetch,
    list_tenant,
    requires,
    team_in,
)
from gatewise.admin.schemas import (
    Limit,
    Offset,
    PageOut,
    UserCreate,
    UserOut,
    UserUpdate,
    empty_page,
    page_of,
)
from gatewise.identity.roles import Permission as P
from gatewise.identity.roles import Role

router = APIRouter(prefix="/admin/v1/users", tags=["users"])
Reader = Annotated[Caller, Depends(requires(P.USERS_READ))]
Writer = Annotated[Caller, Depends(requires(P.USERS_WRITE))]


@router.get("", summary="List users")
async def list_users(
    caller: Reader,
    tenant_id: str | None = None,
    team_id: str | None = None,
    role: Role | None = None,
    email: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PageOut[UserOut]:
    tenant = list_tenant(caller, tenant_id)
    if tenant.empty:
        return empty_page(limit, offset)
    page = await caller.store.list_users(
        tenant_id=tenant.value,
        team_id=team_id,
        role=role,
        email=email,
        limit=limit,
        offset=offset,
    )
    return page_of(page, UserOut.of)


@router.post("", status_code=201, summary="Create a user")
async def create_user(caller: Writer, body: UserCreate) -> UserOut:
    check_grant(caller, body.role)
    team = await team_in(caller, body.team_id, body.tenant_id) if body.team_id else None
    requested = body.tenant_id if team is None or body.tenant_id else team.tenant_id
    # Platform admins may leave a (platform admin) user without a tenant; nobody else can.
    tenant_id = creation_tenant(caller, requested)
    if tenant_id is not None:
        await fetch(caller, caller.store.get_tenant, tenant_id, "tenant", param="tenant_id")
    user = await caller.store.create_user(
        caller.actor, email=body.email, role=body.role, tenant_id=tenant_id, team_id=body.team_id
    )
    return UserOut.of(user)


@router.get("/{user_id}", summary="One user")
async def get_user(caller: Reader, user_id: str) -> UserOut:
    return UserOut.of(await fetch(caller, caller.store.get_user, user_id, "user"))


@router.patch("/{user_id}", summary="Change a user's team, role or status")
async def update_user(caller: Writer, user_id: str, body: UserUpdate) -> UserOut:
    user = await fetch(caller, caller.store.get_user, user_id, "user")
    check_manage(caller, user.role, "user")
    changes = body.model_dump(exclude_unset=True)
    if changes.get("team_id") is not None:
        await team_in(caller, changes["team_id"], user.tenant_id)
    if "role" in changes:
        check_grant(caller, changes["role"])
    return UserOut.of(await caller.store.update_user(caller.actor, user_id, **changes))


@router.delete("/{user_id}", status_code=204, summary="Delete a user (revokes its keys)")
async def delete_user(caller: Writer, user_id: str) -> Response:
    user = await fetch(caller, caller.store.get_user, user_id, "user")
    check_manage(caller, user.role, "user")
    await caller.store.delete_user(caller.actor, user_id)
    return Response(status_code=204)
