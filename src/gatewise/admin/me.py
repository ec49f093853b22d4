"""/admin/v1/me: who the admin API thinks the caller is (any authenticated caller)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from gatewise.admin.authz import Caller, authenticate, permissions_of
from gatewise.admin.schemas import MeOut

router = APIRouter(prefix="/admin/v1", tags=["me"])


@router.get("/me", summary="The caller: its identity, role, scope and permissions")
async def me(caller: Annotated[Caller, Depends(authenticate)]) -> MeOut:
    p = caller.principal
    return MeOut(
        kind=p.kind,
        name=p.name,
        role=p.role,
        tenant_id=p.tenant_id,
        team_id=p.team_id,
        app_id=p.app_id,
        user_id=p.user_id,
        key_id=p.key_id,
        permissions=permissions_of(p),
    )
