"""Apps (service accounts) and users: the principals that own keys."""

from __future__ import annotations

import sqlalchemy as sa

from gatewise.identity.records import Actor, App, Status, User
from gatewise.identity.roles import Role
from gatewise.store.identity_base import (
    Conflict,
    IdentityBase,
    Invalid,
    Page,
    Tx,
    app_of,
    check_changes,
    check_email,
    check_models,
    check_name,
    check_role,
    check_status,
    equal_to,
    key_of,
    new_id,
    row_values,
    subscription_of,
    team_of,
    user_of,
)
from gatewise.store.tables import api_keys, apps, subscriptions, teams, tenants, users

_APP_CHANGES = ("name", "team_id", "role", "allowed_models", "status")
_USER_CHANGES = ("team_id", "role", "status")


class MemberStore(IdentityBase):
    # --- apps -------------------------------------------------------------------------------

    async def create_app(
        self,
        actor: Actor,
        *,
        tenant_id: str,
        name: str,
        team_id: str | None = None,
        role: Role = Role.CONSUMER,
        allowed_models: list[str] | None = None,
    ) -> App:
        name = check_name(name)
        role = _app_role(role)
        models = check_models(allowed_models)
        async with self._write(actor) as tx:
            await tx.row(tenants, tenant_id, "tenant", "tenant_id")
            await _check_team(tx, tenant_id, team_id)
            await _check_app_name(tx, tenant_id, name)
            app = App(
                new_id("app_"), tenant_id, team_id, name, role, models, Status.ACTIVE, tx.at, tx.at
            )
            await tx.execute(apps.insert().values(row_values(apps, app)))
            await tx.audit("create", "app", app.id, tenant_id, None, app)
        return app

    async def get_app(self, app_id: str) -> App:
        return await self._one(apps, app_id, "app", app_of)

    async def list_apps(
        self,
        *,
        tenant_id: str | None = None,
        team_id: str | None = None,
        name: str | None = None,
        status: Status | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[App]:
        checked = check_status(status) if status is not None else None
        where = equal_to(apps, tenant_id=tenant_id, team_id=team_id, name=name, status=checked)
        return await self._page(apps, where, app_of, limit, offset)

    async def update_app(self, actor: Actor, app_id: str, **changes: object) -> App:
        check_changes(changes, _APP_CHANGES, "app")
        if not changes:  # nothing to change: nothing written, nothing audited
            return await self.get_app(app_id)
        values: dict[str, object] = {}
        if "name" in changes:
            values["name"] = check_name(changes["name"])
        if "role" in changes:
            values["role"] = _app_role(changes["role"]).value
        if "allowed_models" in changes:
            values["allowed_models"] = check_models(changes["allowed_models"])
        if "status" in changes:
            values["status"] = check_status(changes["status"]).value
        async with self._write(actor) as tx:
            before = app_of(await tx.row(apps, app_id, "app"))
            if "team_id" in changes:
                team_id = changes["team_id"]
                if team_id is not None and not isinstance(team_id, str):
                    raise Invalid("team_id: must be a team id or null", field="team_id")
                await _check_team(tx, before.tenant_id, team_id)
                values["team_id"] = team_id
            if "name" in values and values["name"] != before.name:
                await _check_app_name(tx, before.tenant_id, str(values["name"]))
            app = app_of(await tx.update(apps, app_id, values))
            await tx.audit("update", "app", app_id, app.tenant_id, before, app)
        return app

    async def delete_app(self, actor: Actor, app_id: str) -> None:
        """Deletes the app and its subscriptions; its keys stay, revoked (for the record)."""
        async with self._write(actor) as tx:
            before = app_of(await tx.row(apps, app_id, "app"))
            await _revoke_keys(tx, api_keys.c.app_id == app_id)
            rows = await tx.execute(
                sa.select(subscriptions).where(subscriptions.c.app_id == app_id)
            )
            for subscription in [subscription_of(row) for row in rows]:
                await tx.audit(
                    "delete", "subscription", subscription.id, before.tenant_id, subscription, None
                )
            await tx.execute(sa.delete(subscriptions).where(subscriptions.c.app_id == app_id))
            await tx.execute(sa.delete(apps).where(apps.c.id == app_id))
            await tx.audit("delete", "app", app_id, before.tenant_id, before, None)

    # --- users ------------------------------------------------------------------------------

    async def create_user(
        self,
        actor: Actor,
        *,
        email: str,
        role: Role,
        tenant_id: str | None = None,
        team_id: str | None = None,
    ) -> User:
        email = check_email(email)
        role = check_role(role)
        if tenant_id is None and role is not Role.PLATFORM_ADMIN:
            raise Invalid(f"tenant_id: a {role.value} belongs to a tenant", field="tenant_id")
        if tenant_id is None and team_id is not None:
            raise Invalid("team_id: a user without a tenant has no team", field="team_id")
        async with self._write(actor) as tx:
            if tenant_id is not None:
                await tx.row(tenants, tenant_id, "tenant", "tenant_id")
                await _check_team(tx, tenant_id, team_id)
            same = (
                users.c.tenant_id.is_(None)
                if tenant_id is None
                else (users.c.tenant_id == tenant_id)
            )
            if await tx.exists(sa.select(users.c.id).where(same, users.c.email == email)):
                where = "among platform admins" if tenant_id is None else "in this tenant"
                raise Conflict(f"a user with email {email!r} already exists {where}", field="email")
            user = User(
                new_id("usr_"), tenant_id, team_id, email, role, Status.ACTIVE, tx.at, tx.at
            )
            await tx.execute(users.insert().values(row_values(users, user)))
            await tx.audit("create", "user", user.id, tenant_id, None, user)
        return user

    async def get_user(self, user_id: str) -> User:
        return await self._one(users, user_id, "user", user_of)

    async def list_users(
        self,
        *,
        tenant_id: str | None = None,
        team_id: str | None = None,
        role: Role | None = None,
        email: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[User]:
        where = equal_to(
            users,
            tenant_id=tenant_id,
            team_id=team_id,
            role=check_role(role).value if role is not None else None,
            email=email.strip().lower() if email is not None else None,
        )
        return await self._page(users, where, user_of, limit, offset)

    async def update_user(self, actor: Actor, user_id: str, **changes: object) -> User:
        check_changes(changes, _USER_CHANGES, "user")
        if not changes:
            return await self.get_user(user_id)
        values: dict[str, object] = {}
        if "role" in changes:
            values["role"] = check_role(changes["role"]).value
        if "status" in changes:
            values["status"] = check_status(changes["status"]).value
        async with self._write(actor) as tx:
            before = user_of(await tx.row(users, user_id, "user"))
            if before.tenant_id is None and values.get("role", Role.PLATFORM_ADMIN) != (
                Role.PLATFORM_ADMIN
            ):
                raise Invalid(
                    f"role: a {values['role']} belongs to a tenant; this user has none",
                    field="role",
                )
            if "team_id" in changes:
                team_id = changes["team_id"]
                if team_id is not None and not isinstance(team_id, str):
                    raise Invalid("team_id: must be a team id or null", field="team_id")
                if before.tenant_id is None and team_id is not None:
                    raise Invalid("team_id: a user without a tenant has no team", field="team_id")
                if before.tenant_id is not None:
                    await _check_team(tx, before.tenant_id, team_id)
                values["team_id"] = team_id
            user = user_of(await tx.update(users, user_id, values))
            await tx.audit("update", "user", user_id, user.tenant_id, before, user)
        return user

    async def delete_user(self, actor: Actor, user_id: str) -> None:
        """Deletes the user; the user's keys stay, revoked (for the record)."""
        async with self._write(actor) as tx:
            before = user_of(await tx.row(users, user_id, "user"))
            await _revoke_keys(tx, api_keys.c.user_id == user_id)
            await tx.execute(sa.delete(users).where(users.c.id == user_id))
            await tx.audit("delete", "user", user_id, before.tenant_id, before, None)


def _app_role(value: object) -> Role:
    role = check_role(value)
    if role is Role.PLATFORM_ADMIN:
        raise Invalid(
            "role: an app belongs to a tenant and cannot be a platform_admin", field="role"
        )
    return role


async def _check_team(tx: Tx, tenant_id: str, team_id: str | None) -> None:
    if team_id is None:
        return
    team = team_of(await tx.row(teams, team_id, "team", "team_id"))
    if team.tenant_id != tenant_id:
        raise Invalid(f"team_id: team {team_id!r} belongs to another tenant", field="team_id")


async def _check_app_name(tx: Tx, tenant_id: str, name: str) -> None:
    taken = sa.select(apps.c.id).where(apps.c.tenant_id == tenant_id, apps.c.name == name)
    if await tx.exists(taken):
        raise Conflict(f"an app named {name!r} already exists in this tenant", field="name")


async def _revoke_keys(tx: Tx, owner: sa.ColumnElement[bool]) -> None:
    """Revoke an owner's live keys, one audit row each."""
    live = sa.select(api_keys).where(owner, api_keys.c.revoked_at.is_(None))
    for before in [key_of(row) for row in await tx.execute(live)]:
        await tx.execute(
            sa.update(api_keys).where(api_keys.c.id == before.id).values(revoked_at=tx.at)
        )
        after = key_of(await tx.row(api_keys, before.id, "key"))
        await tx.audit("revoke", "key", before.id, before.tenant_id, before, after)
