"""/admin/v1/keys: virtual API keys. The plaintext is answered once (create, rotate), never
stored and never shown again; records show the public prefix ``gw-<kid>`` only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from gatewise.admin.authz import (
    Caller,
    check_grant,
    fetch,
    key_for_write,
    key_owner_role,
    list_tenant,
    requires,
)
from gatewise.admin.schemas import (
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyRotate,
    KeyUpdate,
    Limit,
    Offset,
    PageOut,
    empty_page,
    page_of,
)
from gatewise.core.errors import InvalidRequestError
from gatewise.identity.roles import Permission as P
from gatewise.identity.roles import may_grant

router = APIRouter(prefix="/admin/v1/keys", tags=["keys"])
Reader = Annotated[Caller, Depends(requires(P.KEYS_READ))]
Writer = Annotated[Caller, Depends(requires(P.KEYS_WRITE))]


@router.get("", summary="List keys (revoked ones only with include_revoked)")
async def list_keys(
    caller: Reader,
    tenant_id: str | None = None,
    app_id: str | None = None,
    user_id: str | None = None,
    include_revoked: bool = False,
    tag: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PageOut[KeyOut]:
    tenant = list_tenant(caller, tenant_id)
    if tenant.empty:
        return empty_page(limit, offset)
    page = await caller.store.list_keys(
        tenant_id=tenant.value,
        app_id=app_id,
        user_id=user_id,
        include_revoked=include_revoked,
        tag=tag,
        limit=limit,
        offset=offset,
    )
    return page_of(page, KeyOut.of)


@router.post("", status_code=201, summary="Create a key: the answer holds its plaintext, once")
async def create_key(caller: Writer, body: KeyCreate) -> KeyCreated:
    if (body.app_id is None) == (body.user_id is None):
        raise InvalidRequestError(
            "Exactly one of 'app_id' and 'user_id' is required.", param="app_id"
        )
    owner_role = await key_owner_role(caller, body.app_id, body.user_id)
    if body.role is not None:
        check_grant(caller, body.role)
        if not may_grant(owner_role, body.role):
            raise InvalidRequestError(
                f"role: a key may narrow its owner's role '{owner_role.value}', "
                f"not widen it to '{body.role.value}'.",
                param="role",
            )
    record, plaintext = await caller.store.create_key(caller.actor, **body.model_dump())
    return KeyCreated.with_secret(record, plaintext)


@router.get("/{key_id}", summary="One key (never its plaintext or hash)")
async def get_key(caller: Reader, key_id: str) -> KeyOut:
    return KeyOut.of(await fetch(caller, caller.store.get_key, key_id, "key"))


@router.patch("/{key_id}", summary="Change a key's name, models, tags or expiry")
async def update_key(caller: Writer, key_id: str, body: KeyUpdate) -> KeyOut:
    await key_for_write(caller, key_id)
    changes = body.model_dump(exclude_unset=True)
    return KeyOut.of(await caller.store.update_key(caller.actor, key_id, **changes))


@router.post("/{key_id}/revoke", summary="Revoke a key now")
async def revoke_key(caller: Writer, key_id: str) -> KeyOut:
    await key_for_write(caller, key_id)
    return KeyOut.of(await caller.store.revoke_key(caller.actor, key_id))


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    summary="Replace a key: the answer holds the new plaintext, once; the old key keeps "
    "working for grace_seconds",
)
async def rotate_key(caller: Writer, key_id: str, body: KeyRotate | None = None) -> KeyCreated:
    await key_for_write(caller, key_id)
    grace = (body or KeyRotate()).grace_seconds
    record, plaintext = await caller.store.rotate_key(caller.actor, key_id, grace_seconds=grace)
    return KeyCreated.with_secret(record, plaintext)


@router.delete("/{key_id}", status_code=204, summary="Revoke a key (same as POST .../revoke)")
async def delete_key(caller: Writer, key_id: str) -> Response:
    await key_for_write(caller, key_id)
    await caller.store.revoke_key(caller.actor, key_id)
    return Response(status_code=204)
