"""``gatewise records purge``: remove the request records past their retention now.

The gateway's workers purge every ``observability.records.purge_interval_s`` on
their own; this runs the same purge at once (after a retention was shortened, or
from a cron job when the gateway runs with short-lived workers).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from gatewise.commands import support as cs
from gatewise.commands.support import DEFAULT_CONFIG, ConfigOption, JsonOption

if TYPE_CHECKING:
    from gatewise.store.identity import IdentityStore

records_app = typer.Typer(help="Request records: retention.", no_args_is_help=True)


@records_app.command("purge")
def purge(config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False) -> None:
    """Remove the request records older than their tenant's retention (else the default)."""
    from gatewise.config.loader import load_config
    from gatewise.store.identity import NotFound
    from gatewise.store.records import RecordsRepository

    async def action(store: IdentityStore) -> int:
        settings = load_config(config).observability.records
        tenant_days: dict[str, int] = {}
        for name in settings.tenants:
            try:
                tenant = await store.get_tenant_by_name(name)
            except NotFound:
                continue  # no such tenant (yet): nothing of it to purge
            tenant_days[tenant.id] = settings.retention_of(name)
        repository = RecordsRepository(store.database)
        result = await repository.purge(time.time(), settings.retention_days, tenant_days)
        await repository.close()
        if as_json:
            cs.print_json(
                {
                    "partitions_dropped": result.partitions_dropped,
                    "rows_deleted": result.rows_deleted,
                }
            )
        else:
            print(
                f"purged: {result.partitions_dropped} day partitions dropped, "
                f"{result.rows_deleted} records deleted"
            )
        return 0

    cs.exit_with(config, action)
