"""``gatewise usage``: requests, refusals, tokens and cost per tenant, team, app, key, model or
status, as a table.

It reads the usage records of the config's records database (``store.url``),
exactly what ``GET /admin/v1/usage`` sums, over ``[--from, --to)`` (default:
the last 30 days), optionally only some calls (``--status``). ``--json``
prints the API's ``data`` list.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gatewise.commands import support as cs
from gatewise.commands.support import DEFAULT_CONFIG, ConfigOption, JsonOption, MaybeTenant

if TYPE_CHECKING:
    from gatewise.store.identity import IdentityStore

COLUMNS = (
    "group",
    "requests",
    "refused",
    "prompt tokens",
    "completion tokens",
    "total tokens",
    "cost (USD)",
    "cost unknown",
)
MOMENT = "ISO-8601 (2026-11-01, 2026-11-01T10:00:00Z; UTC) or epoch seconds"


class GroupBy(StrEnum):
    TENANT = "tenant"
    TEAM = "team"
    APP = "app"
    KEY = "key"
    MODEL = "model"
    STATUS = "status"


def usage(
    group_by: Annotated[
        GroupBy, typer.Option("--group-by", "-g", help="What to sum per.")
    ] = GroupBy.TENANT,
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--from", help=f"Start, inclusive: {MOMENT}. Default: 30 days before --to."),
    ] = None,
    until: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--to", help=f"End, exclusive: {MOMENT}. Default: now."),
    ] = None,
    status: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--status",
            help="Only these calls, comma-separated: admitted, refused, a status (429) or a "
            "class (4xx).",
        ),
    ] = None,
    tenant: MaybeTenant = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Show usage and spend per tenant, team, app, key, model or status: requests admitted,
    calls refused (by limits, budgets or access), tokens and cost."""
    from gatewise.store.usage import parse_moment, parse_status, period

    bounds: list[float | None] = []
    for option, text in (("--from", since), ("--to", until)):
        try:
            bounds.append(None if text is None else parse_moment(text))
        except ValueError as exc:
            raise typer.Exit(cs.fail(f"{option}: {exc}")) from None
    try:
        start, end = period(bounds[0], bounds[1], now=time.time())
    except ValueError:
        raise typer.Exit(cs.fail("--from: must be before --to")) from None
    try:
        statuses = None if status is None else parse_status(status)
    except ValueError as exc:
        raise typer.Exit(cs.fail(f"--status: {exc}")) from None

    async def action(store: IdentityStore) -> int:
        from gatewise.store.usage import UsageRepository

        tenant_id = (await cs.tenant(store, tenant)).id if tenant else None
        repository = UsageRepository(store.database)
        rows = await repository.summary(
            group_by.value, start, end, tenant_id=tenant_id, status=statuses
        )
        if as_json:
            cs.print_json([row.as_dict() for row in rows])
            return 0
        table = [list(row.as_dict().values()) for row in rows]
        title = f"Usage by {group_by.value}, {cs.when(start)} to {cs.when(end)}"
        cs.print_table(title, COLUMNS, table)
        return 0

    cs.exit_with(config, action)
