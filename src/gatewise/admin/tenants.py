"""/admin/v1/tenants: the organisations; created, disabled and deleted by platform admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from gatewise.admin.authz import Caller, fetch, list_tenant_ids, requires
from gatewise.admin.schemas import (
    Limit,
    Offset,
    PageOut,
    TenantCreate,
    TenantOut,
    TenantUpdate,
    empty_page,
    page_of,
)
from gatewise.identity.records import Status
from gatewise.identity.roles import Permission as P

router = APIRouter(prefix="/admin/v1/tenants", tags=["tenants"])
Reader = Annotated[Caller, Depends(requires(P.TENANTS_READ))]
Writer = Annotated[Caller, Depends(requires(P.TENANTS_WRITE))]


@router.get("", summary="List tenants (others than platform admins see only their own)")
async def list_tenants(
    caller: Reader,
    name: str | None = None,
    status: Status | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PageOut[TenantOut]:
    ids = list_tenant_ids(caller)
    if ids is not None and not ids:
        return empty_page(limit, offset)
    page = await caller.store.list_tenants(
        ids=ids, name=name, status=status, limit=limit, offset=offset
    )
    return page_of(page, TenantOut.of)


@router.post("", status_code=201, summary="Create a tenant (platform admins)")
async def create_tenant(caller: Writer, body: TenantCreate) -> TenantOut:
    tenant = await caller.store.create_tenant(caller.actor, **body.model_dump())
    return TenantOut.of(tenant)


@router.get("/{tenant_id}", summary="One tenant")
async def get_tenant(caller: Reader, tenant_id: str) -> TenantOut:
    return TenantOut.of(await fetch(caller, caller.store.get_tenant, tenant_id, "tenant"))


@router.patch("/{tenant_id}", summary="Change a tenant (platform admins)")
async def update_tenant(caller: Writer, tenant_id: str, body: TenantUpdate) -> TenantOut:
    await fetch(caller, caller.store.get_tenant, tenant_id, "tenant")
    changes = body.model_dump(exclude_unset=True)
    tenant = await caller.store.update_tenant(caller.actor, tenant_id, **changes)
    return TenantOut.of(tenant)


@router.delete("/{tenant_id}", status_code=204, summary="Delete an empty tenant (platform admins)")
async def delete_tenant(caller: Writer, tenant_id: str) -> Response:
    await fetch(caller, caller.store.get_tenant, tenant_id, "tenant")
    await caller.store.delete_tenant(caller.actor, tenant_id)
    return Response(status_code=204)
