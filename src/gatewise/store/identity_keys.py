"""Virtual API keys: create (the plaintext is returned once), list, update, revoke, rotate.

Only ``hash_key(plaintext).hex()`` is stored. A key's role may narrow its
owner's role, never widen it (``roles.may_grant``). A dead key stays dead: a
revoked or expired key is neither rotated nor given a new expiry, and a rotated
key's grace period can be shortened, never lengthened or cancelled.
"""

from __future__ import annotations

import sqlalchemy as sa

from gatewise.identity.keys import display_prefix, generate_key, hash_key
from gatewise.identity.records import Actor, ApiKey
from gatewise.identity.roles import Role, may_grant
from gatewise.store.identity_base import (
    Conflict,
    IdentityBase,
    Invalid,
    Page,
    Tx,
    app_of,
    check_changes,
    check_models,
    check_role,
    check_strings,
    check_text,
    check_time,
    equal_to,
    key_of,
    row_values,
    user_of,
)
from gatewise.store.tables import api_keys, apps, users

_KEY_CHANGES = ("name", "allowed_models", "tags", "expires_at")


class KeyStore(IdentityBase):
    async def create_key(
        self,
        actor: Actor,
        *,
        name: str,
        app_id: str | None = None,
        user_id: str | None = None,
        role: Role | None = None,
        allowed_models: list[str] | None = None,
        tags: list[str] | None = None,
        expires_at: float | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key for an app or a user: (record, plaintext). The plaintext is not kept."""
        if (app_id is None) == (user_id is None):
            raise Invalid("app_id: give exactly one of app_id and user_id", field="app_id")
        key_name = str(check_text(name, "name", limit=256, optional=False))
        key_role = check_role(role) if role is not None else None
        models = check_models(allowed_models)
        key_tags = check_strings(tags, "tags", limit=64) if tags is not None else []
        async with self._write(actor) as tx:
            expiry = _future(check_time(expires_at, "expires_at"), tx)
            tenant_id, owner_role = await _owner(tx, app_id, user_id)
            if key_role is not None and not may_grant(owner_role, key_role):
                raise Invalid(
                    f"role: a key cannot have more power than its owner ({owner_role.value})",
                    field="role",
                )
            key, plaintext = await _insert_key(
                tx, tenant_id, app_id, user_id, key_name, key_role, models, key_tags, expiry
            )
            await tx.audit("create", "key", key.id, tenant_id, None, key)
        return key, plaintext

    async def get_key(self, key_id: str) -> ApiKey:
        return await self._one(api_keys, key_id, "key", key_of)

    async def list_keys(
        self,
        *,
        tenant_id: str | None = None,
        app_id: str | None = None,
        user_id: str | None = None,
        include_revoked: bool = False,
        tag: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[ApiKey]:
        where = equal_to(api_keys, tenant_id=tenant_id, app_id=app_id, user_id=user_id)
        if not include_revoked:
            where.append(api_keys.c.revoked_at.is_(None))
        if tag is not None:
            where.append(self._has_tag(tag))
        return await self._page(api_keys, where, key_of, limit, offset)

    async def update_key(self, actor: Actor, key_id: str, **changes: object) -> ApiKey:
        check_changes(changes, _KEY_CHANGES, "key")
        if not changes:  # nothing to change: nothing written, nothing audited
            key = await self.get_key(key_id)
            if key.revoked_at is not None:
                raise Conflict(f"key {key_id!r} is revoked")
            return key
        values: dict[str, object] = {}
        if "name" in changes:
            values["name"] = check_text(changes["name"], "name", limit=256, optional=False)
        if "allowed_models" in changes:
            values["allowed_models"] = check_models(changes["allowed_models"])
        if "tags" in changes:
            values["tags"] = check_strings(changes["tags"], "tags", limit=64)
        async with self._write(actor) as tx:
            before = await _live_key(tx, key_id)
            if "expires_at" in changes:
                expiry = _future(check_time(changes["expires_at"], "expires_at"), tx)
                _check_new_expiry(before, expiry, tx)
                values["expires_at"] = expiry
            await tx.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(**values))
            key = key_of(await tx.row(api_keys, key_id, "key"))
            await tx.audit("update", "key", key_id, key.tenant_id, before, key)
        return key

    async def revoke_key(self, actor: Actor, key_id: str) -> ApiKey:
        """The key stops working (revoked_at = now); Conflict if it already was revoked."""
        async with self._write(actor) as tx:
            before = await _live_key(tx, key_id)
            await tx.execute(
                sa.update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=tx.at)
            )
            key = key_of(await tx.row(api_keys, key_id, "key"))
            await tx.audit("revoke", "key", key_id, key.tenant_id, before, key)
        return key

    async def rotate_key(
        self, actor: Actor, key_id: str, *, grace_seconds: float = 86400
    ) -> tuple[ApiKey, str]:
        """A successor key (same owner, role, models, tags, name and lifetime); the old one
        keeps working for ``grace_seconds`` at most, then expires. Returns (new, plaintext)."""
        grace = check_time(grace_seconds, "grace_seconds")
        if grace is None or grace < 0:
            raise Invalid("grace_seconds: must be 0 or more", field="grace_seconds")
        async with self._write(actor) as tx:
            old = await _live_key(tx, key_id)
            if old.replaced_by is not None:
                raise Conflict(
                    f"key {key_id!r} was already rotated; rotate {old.replaced_by!r} instead"
                )
            if _expired(old, tx):
                raise Conflict(
                    f"key {key_id!r} has expired; an expired key is not rotated, create a new one"
                )
            lifetime = None if old.expires_at is None else old.expires_at - old.created_at
            new, plaintext = await _insert_key(
                tx,
                old.tenant_id,
                old.app_id,
                old.user_id,
                old.name,
                old.role,
                old.allowed_models,
                old.tags,
                None if lifetime is None else tx.at + lifetime,
            )
            ends = tx.at + grace
            expires = ends if old.expires_at is None else min(old.expires_at, ends)
            await tx.execute(
                sa.update(api_keys)
                .where(api_keys.c.id == key_id)
                .values(expires_at=expires, replaced_by=new.id)
            )
            rotated = key_of(await tx.row(api_keys, key_id, "key"))
            await tx.audit("rotate", "key", key_id, old.tenant_id, old, rotated)
            await tx.audit("create", "key", new.id, new.tenant_id, None, new)
        return new, plaintext

    def _has_tag(self, tag: str) -> sa.ColumnElement[bool]:
        """Whether the key's tags hold ``tag`` (JSON containment differs per engine)."""
        if self.database.engine.dialect.name == "postgresql":
            import orjson

            return sa.text("api_keys.tags @> CAST(:tag_list AS JSONB)").bindparams(
                tag_list=orjson.dumps([tag]).decode()
            )  # type: ignore[return-value]
        return sa.text(
            "EXISTS (SELECT 1 FROM json_each(api_keys.tags) WHERE json_each.value = :tag)"
        ).bindparams(tag=tag)  # type: ignore[return-value]


async def _owner(tx: Tx, app_id: str | None, user_id: str | None) -> tuple[str | None, Role]:
    """The key owner's tenant and role."""
    if app_id is not None:
        app = app_of(await tx.row(apps, app_id, "app", "app_id"))
        return app.tenant_id, app.role
    assert user_id is not None
    user = user_of(await tx.row(users, user_id, "user", "user_id"))
    return user.tenant_id, user.role


async def _live_key(tx: Tx, key_id: str) -> ApiKey:
    key = key_of(await tx.row(api_keys, key_id, "key"))
    if key.revoked_at is not None:
        raise Conflict(f"key {key_id!r} is revoked")
    return key


def _expired(key: ApiKey, tx: Tx) -> bool:
    return key.expires_at is not None and key.expires_at <= tx.at


def _check_new_expiry(key: ApiKey, expires_at: float | None, tx: Tx) -> None:
    """A dead key stays dead, and a rotated key's grace period may end sooner, never later."""
    if _expired(key, tx):
        raise Conflict(
            f"key {key.id!r} has expired; an expired key cannot be given a new expiry, "
            "create a new one",
            field="expires_at",
        )
    ends = key.expires_at
    if key.replaced_by is None or ends is None:
        return
    if expires_at is None or expires_at > ends:
        raise Conflict(
            f"key {key.id!r} was rotated (replaced by {key.replaced_by!r}): its grace "
            f"period ends at {ends:.0f} and may only end sooner",
            field="expires_at",
        )


def _future(expires_at: float | None, tx: Tx) -> float | None:
    if expires_at is not None and expires_at <= tx.at:
        raise Invalid("expires_at: must be in the future", field="expires_at")
    return expires_at


async def _insert_key(
    tx: Tx,
    tenant_id: str | None,
    app_id: str | None,
    user_id: str | None,
    name: str,
    role: Role | None,
    models: list[str] | None,
    tags: list[str],
    expires_at: float | None,
) -> tuple[ApiKey, str]:
    kid, plaintext = generate_key()
    key = ApiKey(
        id="key_" + kid,
        kid=kid,
        prefix=display_prefix(kid),
        key_hash=hash_key(plaintext).hex(),
        tenant_id=tenant_id,
        app_id=app_id,
        user_id=user_id,
        name=name,
        role=role,
        allowed_models=models,
        tags=list(tags),
        created_at=tx.at,
        expires_at=expires_at,
    )
    await tx.execute(api_keys.insert().values(row_values(api_keys, key)))
    return key, plaintext
