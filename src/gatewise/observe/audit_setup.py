"""The audit trail's worker-long parts, built from ``observability.audit``: the writer of the
gateway's own entries (guardrail blocks, config loads) and the export to the sinks."""

from __future__ import annotations

from pathlib import Path

from gatewise.config.audit import AuditConfig
from gatewise.config.models import Config
from gatewise.config.secrets import resolve_reference
from gatewise.observe.audit_events import (
    AuditWriter,
    GuardrailBlocks,
    config_loaded,
    config_rejected,
)
from gatewise.observe.audit_sinks import AuditExporter, build_exporter
from gatewise.store import audit_chain
from gatewise.store.audit_chain import Entry
from gatewise.store.engine import Database


class AuditService:
    """Started after the database (the writer writes to it), closed before it: the writer
    first (its last batch still reaches the sinks), then the sinks."""

    def __init__(
        self, database: Database, config: AuditConfig, exporter: AuditExporter | None
    ) -> None:
        self.database = database
        self.writer = AuditWriter(database, max_queue=config.queue_size)
        self.exporter = exporter

    def observer(self, config: AuditConfig) -> GuardrailBlocks | None:
        """A generation's observer of guardrail blocks (None when they are not audited)."""
        if not config.guardrail_blocks:
            return None
        return GuardrailBlocks(
            self.writer, per_second=config.blocks_per_second, burst=config.block_burst
        )

    def config_loaded(self, config: Config, source: str) -> None:
        """A config now serves (start or reload): audited when ``config_loads`` says so."""
        if config.observability.audit.config_loads:
            self.writer.submit(config_loaded(config, source))

    def config_rejected(
        self, source: str, error: str, *, text: bytes | None = None, serving: Config | None = None
    ) -> None:
        """A reload was refused (``error``); ``serving`` still serves."""
        if serving is None or serving.observability.audit.config_loads:
            self.writer.submit(config_rejected(source, error, text=text, serving=serving))

    def record(self, entry: Entry) -> None:
        """Queue an entry of the gateway's own (e.g. ``config_rejected``): never waits."""
        self.writer.submit(entry)

    def start(self) -> None:
        if self.exporter is not None:
            self.exporter.start()
            audit_chain.listen(self.database, self.exporter.submit)
        self.writer.start()

    async def close(self) -> None:
        await self.writer.close()
        if self.exporter is not None:
            audit_chain.listen(self.database, None)
            await self.exporter.close()


def audit_service(config: Config, database: Database, config_dir: Path | None) -> AuditService:
    """The service, with this worker's ``config_load`` entry already queued (when audited)."""
    section = config.observability.audit
    exporter = build_exporter(section, lambda reference: resolve_reference(reference, config_dir))
    service = AuditService(database, section, exporter)
    service.config_loaded(config, str(config_dir) if config_dir else "(in memory)")
    return service
