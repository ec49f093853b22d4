"""Plumbing for the identity CLI: shared options, opening the store, names to records, output.

Every command runs through ``run``: it loads the config, opens (and migrates)
the records database named by ``store.url``, runs the command, and closes.
Expected failures (bad config, missing secret, unreachable database, a record
not found, a conflict, an invalid value) become one line on stderr and exit
code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from gatewise.identity.records import Actor, ApiKey, App, Team, Tenant, User

T = TypeVar("T")
Action = Callable[["IdentityStore"], Awaitable[int]]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
KEY_WARNING = "This key is shown only now: store it safely, it cannot be shown again."

if TYPE_CHECKING:  # the store (and SQLAlchemy) load only when a command runs
    from gatewise.store.identity import IdentityStore


class UsageError(Exception):
    """A command line value is wrong (reported like the store's own errors)."""


def actor() -> Actor:
    return Actor(name=f"cli:{getpass.getuser()}")


def run(config: Path, action: Action) -> int:
    """Open the store named by ``config``, run ``action``, close; map failures to exit 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from gatewise.config.loader import ConfigError, load_config
    from gatewise.config.secrets import SecretResolutionError
    from gatewise.store.engine import Database, StoreError
    from gatewise.store.identity import IdentityError, IdentityStore
    from gatewise.store.urls import resolve_store_url

    async def main() -> int:
        settings = load_config(config)
        database = Database(resolve_store_url(settings.store.url, config.resolve().parent))
        await database.start()
        try:
            return await action(IdentityStore(database))
        finally:
            await database.close()

    try:
        return asyncio.run(main())
    except ConfigError as exc:
        more = f" (and {len(exc.issues) - 1} more)" if len(exc.issues) > 1 else ""
        return fail(f"{exc.issues[0]}{more}" if exc.issues else str(exc))
    except (SecretResolutionError, StoreError) as exc:
        return fail(f"{config}: store.url: {str(exc).removeprefix('store.url: ')}")
    except IdentityError as exc:
        return fail(exc.message)
    except UsageError as exc:
        return fail(str(exc))
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        return fail(f"records database error: {type(cause).__name__}: {str(cause).splitlines()[0]}")


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


# --- shared options ----------------------------------------------------------------------------

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The gateway's YAML configuration file.")
]
DEFAULT_CONFIG = Path("examples/quickstart.yaml")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
Models = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--models", help="Allowed models, comma-separated (globs like gpt-4o*)."),
]
TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant name or id.")]
MaybeTenant = Annotated[Optional[str], typer.Option("--tenant", help="Tenant name or id.")]  # noqa: UP045
MaybeTeam = Annotated[Optional[str], typer.Option("--team", help="Team name or id.")]  # noqa: UP045


def exit_with(config: Path, action: Action) -> None:
    raise typer.Exit(run(config, action))


# --- values from the command line -----------------------------------------------------------------


def csv(value: str | None) -> list[str] | None:
    """``a,b`` -> ["a", "b"]; None stays None (no restriction)."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def duration(value: str, option: str) -> float:
    """``90s``, ``15m``, ``24h``, ``30d``, ``2w`` (or plain seconds) -> seconds."""
    match = _DURATION.match(value)
    if match is None:
        raise UsageError(f"{option}: {value!r} is not a duration like 90s, 15m, 24h, 30d or 2w")
    return float(match.group(1)) * _UNITS[match.group(2)]


def key_id(value: str) -> str:
    """A key's id from its id (``key_<kid>``), its prefix (``gw-<kid>``) or its kid."""
    value = value.strip()
    if value.startswith("key_"):
        return value
    if value.startswith("gw-"):
        return "key_" + value[3:15]
    return "key_" + value


# --- names or ids -> records ----------------------------------------------------------------------


async def tenant(store: IdentityStore, value: str) -> Tenant:
    from gatewise.store.identity import NotFound

    if value.startswith("ten_"):
        try:
            return await store.get_tenant(value)
        except NotFound:
            pass
    try:
        return await store.get_tenant_by_name(value)
    except NotFound:
        raise NotFound(f"no tenant named or with id {value!r}") from None


async def team(store: IdentityStore, tenant_id: str, value: str) -> Team:
    found = await _member(store.get_team, store.list_teams, tenant_id, value, "team_")
    if found is None:
        raise UsageError(f"--team: no team named or with id {value!r} in this tenant")
    team_found: Team = found
    return team_found


async def app(store: IdentityStore, tenant_id: str | None, value: str) -> App:
    if tenant_id is None and not value.startswith("app_"):
        raise UsageError("--app: give --tenant too, or the app's id (app_...)")
    found = await _member(store.get_app, store.list_apps, tenant_id, value, "app_")
    if found is None:
        raise UsageError(f"--app: no app named or with id {value!r} in this tenant")
    app_found: App = found
    return app_found


async def _member(
    get: Callable[[str], Awaitable[Any]],
    find: Callable[..., Awaitable[Any]],
    tenant_id: str | None,
    value: str,
    prefix: str,
) -> Any:
    from gatewise.store.identity import NotFound

    if value.startswith(prefix):
        try:
            record = await get(value)
        except NotFound:
            record = None
        if record is not None and tenant_id in (None, record.tenant_id):
            return record
    if tenant_id is None:
        return None
    page = await find(tenant_id=tenant_id, name=value, limit=1)
    return page.items[0] if page.items else None


async def user(store: IdentityStore, email: str, tenant_id: str | None = None) -> User:
    """The user with ``email`` (in ``tenant_id`` if given): emails are unique per tenant only."""
    page = await store.list_users(email=email, tenant_id=tenant_id, limit=2)
    if not page.items:
        where = " in that tenant" if tenant_id is not None else ""
        raise UsageError(f"--user: no user with email {email!r}{where}")
    if page.total > 1:
        raise UsageError(
            f"--user: {page.total} users of different tenants have email {email!r}; "
            "name one with --tenant"
        )
    found: User = page.items[0]
    return found


async def everything(fetch: Callable[..., Awaitable[Any]], **filters: Any) -> list[Any]:
    """All items of a paged list."""
    items: list[Any] = []
    while True:
        page = await fetch(**filters, limit=1000, offset=len(items))
        items.extend(page.items)
        if not page.items or len(items) >= page.total:
            return items


# --- output ---------------------------------------------------------------------------------------


def plain(record: object) -> dict[str, object]:
    """A record as JSON-ready values, without a key's hash."""
    from gatewise.store.identity_base import audit_dict

    return audit_dict(record)


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, default=lambda v: v.value if isinstance(v, Enum) else str(v)))


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*(show(value) for value in row))
    console = Console()
    if not console.is_terminal:
        console.width = 240  # pipes and files: do not cut ids to fit 80 columns
    console.print(table)


def print_record(title: str, record: object) -> None:
    print_table(title, ("field", "value"), plain(record).items())


def show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "-"
    if isinstance(value, float):
        return when(value)
    return str(value)


def when(epoch: float) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def print_new_key(key: ApiKey, plaintext: str, as_json: bool, owner: str) -> None:
    """The one time a key's plaintext is shown."""
    if as_json:
        print_json({**plain(key), "key": plaintext})
    else:
        expiry = f", expires {when(key.expires_at)}" if key.expires_at else ""
        print(f"Created key {key.id} ({key.prefix}) for {owner}{expiry}.")
        print(plaintext)
    print(KEY_WARNING, file=sys.stderr)


def show_one(record: object, title: str, as_json: bool) -> None:
    if as_json:
        print_json(plain(record))
    else:
        print_record(title, record)


def show_list(
    items: Sequence[object],
    rows: Sequence[Sequence[object]],
    title: str,
    columns: tuple[str, ...],
    as_json: bool,
) -> None:
    if as_json:
        print_json([plain(item) for item in items])
    else:
        print_table(title, columns, rows)
