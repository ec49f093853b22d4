"""Request records (privacy, retention, the writer): the ``observability.records`` section.

One record per request, written in batches by a background writer (``store.records_writer``).
Bodies follow a privacy mode: ``off`` keeps none (and costs nothing), ``redacted`` keeps the
texts with personal data and secrets replaced, ``full`` keeps them as they were. The mode and
the retention can be set per tenant (by the tenant's name).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gatewise.config.base import Name, Strict

Privacy = Literal["off", "redacted", "full"]
PRIVACY_MODES: tuple[Privacy, ...] = ("off", "redacted", "full")


class TenantRecordsConfig(Strict):
    """One tenant's own privacy mode and retention (unset: the section's defaults)."""

    privacy: Privacy | None = None
    retention_days: int | None = Field(None, ge=1, le=3650)


class RecordsConfig(Strict):
    enabled: bool = Field(
        True,
        description="Write one record per request (caller, route, attempts, timing, tokens, "
        "cost, guardrail verdicts): `GET /admin/v1/requests` lists them.",
    )
    privacy: Privacy = Field(
        "off",
        description="What records keep of prompts and replies: `off` nothing, `redacted` the "
        "texts with personal data and secrets replaced, `full` the texts as they were.",
    )
    retention_days: int = Field(
        30, ge=1, le=3650, description="Days a record is kept; older ones are purged."
    )
    tenants: dict[Name, TenantRecordsConfig] = Field(
        default_factory=dict,
        description="Per tenant (by name): its own `privacy` and `retention_days`.",
    )
    queue_size: int = Field(
        50_000,
        ge=100,
        le=10_000_000,
        description="Records a worker holds in memory while the database catches up.",
    )
    batch_size: int = Field(2_000, ge=1, le=100_000, description="Records per insert.")
    flush_interval_ms: int = Field(
        500, ge=10, le=60_000, description="Longest time a record waits before its batch goes."
    )
    overflow: Literal["spill", "drop"] = Field(
        "spill",
        description="When the queue is full or the database is unreachable: `spill` writes "
        "records to a local file and replays them later; `drop` drops and counts them.",
    )
    spool: str | None = Field(
        None,
        min_length=1,
        description="Folder of the spill files (relative paths start at this file's folder). "
        "Default: a folder in the system's temporary directory named after the store URL.",
    )
    purge_interval_s: int = Field(
        3600, ge=10, le=86_400, description="Seconds between two purges of expired records."
    )

    def privacy_of(self, tenant: str | None) -> Privacy:
        """The privacy mode of the tenant named ``tenant`` (None: no tenant)."""
        if tenant is not None:
            found = self.tenants.get(tenant)
            if found is not None and found.privacy is not None:
                return found.privacy
        return self.privacy

    def retention_of(self, tenant: str) -> int:
        found = self.tenants.get(tenant)
        if found is not None and found.retention_days is not None:
            return found.retention_days
        return self.retention_days

    @property
    def keeps_bodies(self) -> bool:
        """Whether any tenant's records keep bodies (else nothing captures them)."""
        return self.privacy != "off" or any(
            t.privacy not in (None, "off") for t in self.tenants.values()
        )
