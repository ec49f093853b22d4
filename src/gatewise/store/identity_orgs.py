"""Tenants and teams: the organisation tree every other identity record hangs from."""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa

from gatewise.identity.records import Actor, Status, Team, Tenant
from gatewise.store.identity_base import (
    Conflict,
    IdentityBase,
    NotFound,
    Page,
    Tx,
    check_changes,
    check_models,
    check_name,
    check_status,
    check_text,
    equal_to,
    new_id,
    row_values,
    team_of,
    tenant_of,
)
from gatewise.store.tables import api_keys, apps, subscriptions, teams, tenants, users

_TENANT_CHANGES = ("display_name", "allowed_models", "status")
_TEAM_CHANGES = ("name", "allowed_models")


class OrgStore(IdentityBase):
    # --- tenants ----------------------------------------------------------------------------

    async def create_tenant(
        self,
        actor: Actor,
        *,
        name: str,
        display_name: str | None = None,
        allowed_models: list[str] | None = None,
    ) -> Tenant:
        name = check_name(name)
        display_name = check_text(display_name, "display_name", limit=256)
        models = check_models(allowed_models)
        async with self._write(actor) as tx:
            if await tx.exists(sa.select(tenants.c.id).where(tenants.c.name == name)):
                raise Conflict(f"a tenant named {name!r} already exists", field="name")
            tenant = Tenant(new_id("ten_"), name, display_name, models, Status.ACTIVE, tx.at, tx.at)
            await tx.execute(tenants.insert().values(row_values(tenants, tenant)))
            await tx.audit("create", "tenant", tenant.id, tenant.id, None, tenant)
        return tenant

    async def get_tenant(self, tenant_id: str) -> Tenant:
        return await self._one(tenants, tenant_id, "tenant", tenant_of)

    async def get_tenant_by_name(self, name: str) -> Tenant:
        async with self.database.engine.connect() as connection:
            row = (
                await connection.execute(sa.select(tenants).where(tenants.c.name == name))
            ).first()
        if row is None:
            raise NotFound(f"tenant named {name!r} not found")
        return tenant_of(row)

    async def list_tenants(
        self,
        *,
        ids: Collection[str] | None = None,
        name: str | None = None,
        status: Status | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Tenant]:
        checked = check_status(status) if status is not None else None
        where = equal_to(tenants, name=name, status=checked)
        if ids is not None:
            where.append(tenants.c.id.in_(list(ids)))
        return await self._page(tenants, where, tenant_of, limit, offset)

    async def update_tenant(self, actor: Actor, tenant_id: str, **changes: object) -> Tenant:
        check_changes(changes, _TENANT_CHANGES, "tenant")
        if not changes:  # nothing to change: nothing written, nothing audited
            return await self.get_tenant(tenant_id)
        values: dict[str, object] = {}
        if "display_name" in changes:
            values["display_name"] = check_text(changes["display_name"], "display_name", limit=256)
        if "allowed_models" in changes:
            values["allowed_models"] = check_models(changes["allowed_models"])
        if "status" in changes:
            values["status"] = check_status(changes["status"]).value
        async with self._write(actor) as tx:
            before = tenant_of(await tx.row(tenants, tenant_id, "tenant"))
            after = await tx.update(tenants, tenant_id, values)
            tenant = tenant_of(after)
            await tx.audit("update", "tenant", tenant_id, tenant_id, before, tenant)
        return tenant

    async def delete_tenant(self, actor: Actor, tenant_id: str) -> None:
        """Refused while the tenant has teams, apps, users or live keys: no cascade surprises.

        Revoked keys (of deleted apps and users) and decided subscriptions go with it.
        """
        async with self._write(actor) as tx:
            before = tenant_of(await tx.row(tenants, tenant_id, "tenant"))
            for table, what in ((teams, "teams"), (apps, "apps"), (users, "users")):
                if await tx.exists(sa.select(table.c.id).where(table.c.tenant_id == tenant_id)):
                    raise Conflict(f"tenant {before.name!r} still has {what}; delete them first")
            live_keys = sa.select(api_keys.c.id).where(
                api_keys.c.tenant_id == tenant_id, api_keys.c.revoked_at.is_(None)
            )
            if await tx.exists(live_keys):
                raise Conflict(f"tenant {before.name!r} still has keys; revoke them first")
            await tx.execute(sa.delete(subscriptions).where(subscriptions.c.tenant_id == tenant_id))
            await tx.execute(sa.delete(api_keys).where(api_keys.c.tenant_id == tenant_id))
            await tx.execute(sa.delete(tenants).where(tenants.c.id == tenant_id))
            await tx.audit("delete", "tenant", tenant_id, tenant_id, before, None)

    # --- teams ------------------------------------------------------------------------------

    async def create_team(
        self,
        actor: Actor,
        *,
        tenant_id: str,
        name: str,
        allowed_models: list[str] | None = None,
    ) -> Team:
        name = check_name(name)
        models = check_models(allowed_models)
        async with self._write(actor) as tx:
            await tx.row(tenants, tenant_id, "tenant", "tenant_id")
            await _check_team_name(tx, tenant_id, name)
            team = Team(new_id("team_"), tenant_id, name, models, tx.at, tx.at)
            await tx.execute(teams.insert().values(row_values(teams, team)))
            await tx.audit("create", "team", team.id, tenant_id, None, team)
        return team

    async def get_team(self, team_id: str) -> Team:
        return await self._one(teams, team_id, "team", team_of)

    async def list_teams(
        self,
        *,
        tenant_id: str | None = None,
        name: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Team]:
        where = equal_to(teams, tenant_id=tenant_id, name=name)
        return await self._page(teams, where, team_of, limit, offset)

    async def update_team(self, actor: Actor, team_id: str, **changes: object) -> Team:
        check_changes(changes, _TEAM_CHANGES, "team")
        if not changes:
            return await self.get_team(team_id)
        values: dict[str, object] = {}
        if "name" in changes:
            values["name"] = check_name(changes["name"])
        if "allowed_models" in changes:
            values["allowed_models"] = check_models(changes["allowed_models"])
        async with self._write(actor) as tx:
            before = team_of(await tx.row(teams, team_id, "team"))
            if "name" in values and values["name"] != before.name:
                await _check_team_name(tx, before.tenant_id, str(values["name"]))
            team = team_of(await tx.update(teams, team_id, values))
            await tx.audit("update", "team", team_id, team.tenant_id, before, team)
        return team

    async def delete_team(self, actor: Actor, team_id: str) -> None:
        """Refused while apps or users are in the team."""
        async with self._write(actor) as tx:
            before = team_of(await tx.row(teams, team_id, "team"))
            for table, what in ((apps, "apps"), (users, "users")):
                if await tx.exists(sa.select(table.c.id).where(table.c.team_id == team_id)):
                    raise Conflict(f"team {before.name!r} still has {what}; move or delete them")
            await tx.execute(sa.delete(teams).where(teams.c.id == team_id))
            await tx.audit("delete", "team", team_id, before.tenant_id, before, None)


async def _check_team_name(tx: Tx, tenant_id: str, name: str) -> None:
    taken = sa.select(teams.c.id).where(teams.c.tenant_id == tenant_id, teams.c.name == name)
    if await tx.exists(taken):
        raise Conflict(f"a team named {name!r} already exists in this tenant", field="name")
