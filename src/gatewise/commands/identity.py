"""``gatewise admin|tenants|teams|apps|users|keys``: manage identity records from a shell.

The commands work on the records database of a config file (``--config``),
like the gateway itself, and write the audit trail as ``cli:<login>``. A key's
plaintext is printed once, by ``keys create``, ``keys rotate`` and ``admin
create``; lists show its prefix (``gw-<kid>``), never more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gatewise.commands import support as cs
from gatewise.commands.keys import admin_app, keys_app
from gatewise.commands.support import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    MaybeTeam,
    MaybeTenant,
    Models,
    TenantOption,
    exit_with,
    show_list,
    show_one,
)
from gatewise.identity.records import Status
from gatewise.identity.roles import Role

__all__ = ["admin_app", "apps_app", "keys_app", "teams_app", "tenants_app", "users_app"]

if TYPE_CHECKING:
    from gatewise.store.identity import IdentityStore

tenants_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
teams_app = typer.Typer(help="Manage teams (inside a tenant).", no_args_is_help=True)
apps_app = typer.Typer(help="Manage apps (service accounts).", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)

TENANT_COLUMNS = ("id", "name", "display name", "models", "status", "created")


# --- tenants --------------------------------------------------------------------------------------


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="Unique tenant name (lowercase slug).")],
    display_name: Annotated[Optional[str], typer.Option("--display-name")] = None,  # noqa: UP045
    models: Models = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant."""

    async def action(store: IdentityStore) -> int:
        tenant = await store.create_tenant(
            cs.actor(), name=name, display_name=display_name, allowed_models=cs.csv(models)
        )
        show_one(tenant, "Tenant created", as_json)
        return 0

    exit_with(config, action)


@tenants_app.command("list")
def tenants_list(config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False) -> None:
    """List tenants."""

    async def action(store: IdentityStore) -> int:
        items = await cs.everything(store.list_tenants)
        if as_json:
            cs.print_json([cs.plain(t) for t in items])
        else:
            rows = [
                (t.id, t.name, t.display_name, t.allowed_models, t.status, t.created_at)
                for t in items
            ]
            cs.print_table(f"Tenants ({len(items)})", TENANT_COLUMNS, rows)
        return 0

    exit_with(config, action)


@tenants_app.command("show")
def tenantsshow_one(
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.")],
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Show one tenant."""

    async def action(store: IdentityStore) -> int:
        show_one(await cs.tenant(store, tenant), "Tenant", as_json)
        return 0

    exit_with(config, action)


@tenants_app.command("update")
def tenants_update(
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.")],
    display_name: Annotated[Optional[str], typer.Option("--display-name")] = None,  # noqa: UP045
    models: Models = None,
    any_model: Annotated[
        bool, typer.Option("--any-model", help="Remove the tenant's model restriction.")
    ] = False,
    status: Annotated[Optional[Status], typer.Option("--status")] = None,  # noqa: UP045
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Change a tenant's display name, allowed models or status."""
    changes: dict[str, object] = {}
    if display_name is not None:
        changes["display_name"] = display_name
    if models is not None and any_model:
        raise typer.Exit(cs.fail("--models and --any-model exclude each other"))
    if models is not None or any_model:
        changes["allowed_models"] = cs.csv(models)
    if status is not None:
        changes["status"] = status
    if not changes:
        raise typer.Exit(cs.fail("nothing to change: give --display-name, --models, --status"))

    async def action(store: IdentityStore) -> int:
        found = await cs.tenant(store, tenant)
        show_one(
            await store.update_tenant(cs.actor(), found.id, **changes), "Tenant updated", as_json
        )
        return 0

    exit_with(config, action)


@tenants_app.command("delete")
def tenants_delete(
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Delete a tenant (refused while it has teams, apps, users or live keys)."""

    async def action(store: IdentityStore) -> int:
        found = await cs.tenant(store, tenant)
        await store.delete_tenant(cs.actor(), found.id)
        print(f"Deleted tenant {found.name} ({found.id}).")
        return 0

    exit_with(config, action)


# --- teams, apps, users ---------------------------------------------------------------------------


@teams_app.command("create")
def teams_create(
    name: Annotated[str, typer.Argument(help="Team name (unique in the tenant).")],
    tenant: TenantOption,
    models: Models = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Create a team in a tenant."""

    async def action(store: IdentityStore) -> int:
        owner = await cs.tenant(store, tenant)
        team = await store.create_team(
            cs.actor(), tenant_id=owner.id, name=name, allowed_models=cs.csv(models)
        )
        show_one(team, "Team created", as_json)
        return 0

    exit_with(config, action)


@teams_app.command("list")
def teams_list(
    tenant: TenantOption, config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False
) -> None:
    """List a tenant's teams."""

    async def action(store: IdentityStore) -> int:
        owner = await cs.tenant(store, tenant)
        items = await cs.everything(store.list_teams, tenant_id=owner.id)
        rows = [(t.id, t.name, t.allowed_models, t.created_at) for t in items]
        show_list(
            items,
            rows,
            f"Teams of {owner.name} ({len(items)})",
            ("id", "name", "models", "created"),
            as_json,
        )
        return 0

    exit_with(config, action)


@apps_app.command("create")
def apps_create(
    name: Annotated[str, typer.Argument(help="App name (unique in the tenant).")],
    tenant: TenantOption,
    team: MaybeTeam = None,
    role: Annotated[Role, typer.Option("--role", help="The app's role.")] = Role.CONSUMER,
    models: Models = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Create an app (a service account) in a tenant."""

    async def action(store: IdentityStore) -> int:
        owner = await cs.tenant(store, tenant)
        team_id = (await cs.team(store, owner.id, team)).id if team else None
        app = await store.create_app(
            cs.actor(),
            tenant_id=owner.id,
            name=name,
            team_id=team_id,
            role=role,
            allowed_models=cs.csv(models),
        )
        show_one(app, "App created", as_json)
        return 0

    exit_with(config, action)


@apps_app.command("list")
def apps_list(
    tenant: TenantOption, config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False
) -> None:
    """List a tenant's apps."""

    async def action(store: IdentityStore) -> int:
        owner = await cs.tenant(store, tenant)
        items = await cs.everything(store.list_apps, tenant_id=owner.id)
        rows = [(a.id, a.name, a.team_id, a.role, a.allowed_models, a.status) for a in items]
        columns = ("id", "name", "team", "role", "models", "status")
        show_list(items, rows, f"Apps of {owner.name} ({len(items)})", columns, as_json)
        return 0

    exit_with(config, action)


@users_app.command("create")
def users_create(
    email: Annotated[
        str, typer.Option("--email", help="The user's email (unique within its tenant).")
    ],
    role: Annotated[Role, typer.Option("--role", help="The user's role.")],
    tenant: MaybeTenant = None,
    team: MaybeTeam = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Create a user (every role but platform_admin needs --tenant)."""

    async def action(store: IdentityStore) -> int:
        tenant_id = (await cs.tenant(store, tenant)).id if tenant else None
        if team and tenant_id is None:
            return cs.fail("--team: give --tenant too")
        team_id = (await cs.team(store, tenant_id, team)).id if team and tenant_id else None
        user = await store.create_user(
            cs.actor(), email=email, role=role, tenant_id=tenant_id, team_id=team_id
        )
        show_one(user, "User created", as_json)
        return 0

    exit_with(config, action)


@users_app.command("list")
def users_list(
    tenant: MaybeTenant = None, config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False
) -> None:
    """List users (of one tenant with --tenant)."""

    async def action(store: IdentityStore) -> int:
        tenant_id = (await cs.tenant(store, tenant)).id if tenant else None
        items = await cs.everything(store.list_users, tenant_id=tenant_id)
        rows = [(u.id, u.email, u.role, u.tenant_id, u.team_id, u.status) for u in items]
        columns = ("id", "email", "role", "tenant", "team", "status")
        show_list(items, rows, f"Users ({len(items)})", columns, as_json)
        return 0

    exit_with(config, action)
