"""``gatewise admin create`` and ``gatewise keys ...``: the commands that print a key.

A key's plaintext is printed once, by ``keys create``, ``keys rotate`` and
``admin create`` (with a warning on stderr); ``keys list`` shows prefixes only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gatewise.commands import support as cs
from gatewise.commands.support import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    MaybeTenant,
    Models,
    exit_with,
    show_list,
)
from gatewise.identity.roles import Role

if TYPE_CHECKING:
    from gatewise.store.identity import IdentityStore

admin_app = typer.Typer(help="Bootstrap platform administrators.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage virtual API keys.", no_args_is_help=True)
KEY_COLUMNS = ("id", "prefix", "name", "owner", "role", "models", "tags", "expires", "revoked")


# --- admin ----------------------------------------------------------------------------------------


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option("--email", help="The administrator's email.")],
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Create a platform admin user and its first key (printed once). Refuses a known email."""

    async def action(store: IdentityStore) -> int:
        if (await store.list_users(email=email, limit=1)).total:
            return cs.fail(f"a user with email {email.strip().lower()!r} already exists")
        user = await store.create_user(cs.actor(), email=email, role=Role.PLATFORM_ADMIN)
        key, plaintext = await store.create_key(cs.actor(), user_id=user.id, name="bootstrap")
        cs.print_new_key(key, plaintext, as_json, f"platform admin {user.email}")
        return 0

    exit_with(config, action)


# --- keys -----------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="What the key is for.")],
    app: Annotated[Optional[str], typer.Option("--app", help="Owner app: name or id.")] = None,  # noqa: UP045
    user: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--user", help="Owner user's email (with --tenant if several tenants have it)."
        ),
    ] = None,
    tenant: MaybeTenant = None,
    role: Annotated[
        Optional[Role],  # noqa: UP045
        typer.Option("--role", help="Narrow the owner's role for this key."),
    ] = None,
    models: Models = None,
    tags: Annotated[Optional[str], typer.Option("--tags", help="Comma-separated tags.")] = None,  # noqa: UP045
    expires_in: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--expires-in", help="Lifetime, e.g. 12h, 30d, 2w (default: none)."),
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Create a key for an app or a user; the key is printed once."""
    if (app is None) == (user is None):
        raise typer.Exit(cs.fail("give exactly one of --app and --user"))

    async def action(store: IdentityStore) -> int:
        expires_at = time.time() + cs.duration(expires_in, "--expires-in") if expires_in else None
        tenant_id = (await cs.tenant(store, tenant)).id if tenant else None
        if app is not None:
            owner_app = await cs.app(store, tenant_id, app)
            app_id, user_id, owner = owner_app.id, None, f"app {owner_app.name}"
        else:
            assert user is not None
            owner_user = await cs.user(store, user, tenant_id)
            app_id, user_id, owner = None, owner_user.id, f"user {owner_user.email}"
        key, plaintext = await store.create_key(
            cs.actor(),
            name=name,
            app_id=app_id,
            user_id=user_id,
            role=role,
            allowed_models=cs.csv(models),
            tags=cs.csv(tags),
            expires_at=expires_at,
        )
        cs.print_new_key(key, plaintext, as_json, owner)
        return 0

    exit_with(config, action)


@keys_app.command("list")
def keys_list(
    tenant: MaybeTenant = None,
    app: Annotated[Optional[str], typer.Option("--app", help="Only this app's keys.")] = None,  # noqa: UP045
    show_all: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """List keys by prefix (never the key or its hash)."""

    async def action(store: IdentityStore) -> int:
        tenant_id = (await cs.tenant(store, tenant)).id if tenant else None
        app_id = (await cs.app(store, tenant_id, app)).id if app else None
        items = await cs.everything(
            store.list_keys, tenant_id=tenant_id, app_id=app_id, include_revoked=show_all
        )
        rows = [
            (
                k.id,
                k.prefix,
                k.name,
                k.app_id or k.user_id,
                k.role,
                k.allowed_models,
                k.tags,
                k.expires_at,
                k.revoked_at,
            )
            for k in items
        ]
        show_list(items, rows, f"Keys ({len(items)})", KEY_COLUMNS, as_json)
        return 0

    exit_with(config, action)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id (key_...) or prefix (gw-...).")],
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Revoke a key: it stops working at once."""

    async def action(store: IdentityStore) -> int:
        revoked = await store.revoke_key(cs.actor(), cs.key_id(key))
        print(f"Revoked key {revoked.id} ({revoked.prefix}).")
        return 0

    exit_with(config, action)


@keys_app.command("rotate")
def keys_rotate(
    key: Annotated[str, typer.Argument(help="Key id (key_...) or prefix (gw-...).")],
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old key keeps working, e.g. 1h, 24h.")
    ] = "24h",
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Replace a key: prints the new key once; the old one works for the grace period."""

    async def action(store: IdentityStore) -> int:
        seconds = cs.duration(grace, "--grace")
        new, plaintext = await store.rotate_key(cs.actor(), cs.key_id(key), grace_seconds=seconds)
        cs.print_new_key(new, plaintext, as_json, f"the owner of {cs.key_id(key)}")
        return 0

    exit_with(config, action)
