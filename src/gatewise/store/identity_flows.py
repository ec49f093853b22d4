"""Subscriptions (the approval workflow), the audit trail, and the hot path's snapshot."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gatewise.identity.records import (
    Actor,
    AuditEntry,
    Snapshot,
    Subscription,
    SubscriptionStatus,
)
from gatewise.store import audit_chain
from gatewise.store.identity_base import (
    Conflict,
    IdentityBase,
    Invalid,
    Page,
    app_of,
    check_text,
    check_time,
    equal_to,
    key_of,
    new_id,
    now,
    row_values,
    subscription_of,
    team_of,
    tenant_of,
    user_of,
)
from gatewise.store.tables import (
    api_keys,
    apps,
    audit_log,
    identity_version,
    subscriptions,
    teams,
    tenants,
    users,
)

S = SubscriptionStatus
#: action -> (the status it starts from, the status it ends in)
_TRANSITIONS = {
    "approve": (S.PENDING, S.APPROVED),
    "reject": (S.PENDING, S.REJECTED),
    "revoke": (S.APPROVED, S.REVOKED),
}
#: A revoked key stays in the snapshot this long, so the gateway can say "revoked".
REVOKED_KEYS_SHOWN = 3600.0
_SNAPSHOT_ATTEMPTS = 5


class FlowStore(IdentityBase):
    # --- subscriptions ----------------------------------------------------------------------

    async def request_subscription(
        self, actor: Actor, *, app_id: str, model: str, note: str | None = None
    ) -> Subscription:
        """An app asks for a model; Conflict while a pending or approved request exists."""
        model = str(check_text(model, "model", limit=256, optional=False))
        note = check_text(note, "note", limit=2000)
        async with self._write(actor) as tx:
            app = app_of(await tx.row(apps, app_id, "app", "app_id"))
            open_one = sa.select(subscriptions.c.status).where(
                subscriptions.c.app_id == app_id,
                subscriptions.c.model == model,
                subscriptions.c.status.in_([S.PENDING.value, S.APPROVED.value]),
            )
            status = (await tx.execute(open_one.limit(1))).scalar()
            if status is not None:
                raise Conflict(
                    f"app {app.name!r} already has a subscription to {model!r} ({status})",
                    field="model",
                )
            subscription = Subscription(
                id=new_id("sub_"),
                tenant_id=app.tenant_id,
                app_id=app_id,
                model=model,
                status=S.PENDING,
                requested_by=actor.name,
                requested_at=tx.at,
                note=note,
            )
            await tx.execute(subscriptions.insert().values(row_values(subscriptions, subscription)))
            await tx.audit(
                "request", "subscription", subscription.id, app.tenant_id, None, subscription
            )
        return subscription

    async def get_subscription(self, sub_id: str) -> Subscription:
        return await self._one(subscriptions, sub_id, "subscription", subscription_of)

    async def list_subscriptions(
        self,
        *,
        tenant_id: str | None = None,
        app_id: str | None = None,
        model: str | None = None,
        status: SubscriptionStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Subscription]:
        if status is not None and status not in {s.value for s in S}:
            raise Invalid(f"status: {status!r} is not a subscription status", field="status")
        where = equal_to(
            subscriptions,
            tenant_id=tenant_id,
            app_id=app_id,
            model=model,
            status=str(status) if status is not None else None,
        )
        order = (subscriptions.c.requested_at, subscriptions.c.id)
        return await self._page(subscriptions, where, subscription_of, limit, offset, order)

    async def approve_subscription(
        self, actor: Actor, sub_id: str, *, reason: str | None = None
    ) -> Subscription:
        return await self._decide(actor, sub_id, "approve", reason)

    async def reject_subscription(
        self, actor: Actor, sub_id: str, *, reason: str | None = None
    ) -> Subscription:
        return await self._decide(actor, sub_id, "reject", reason)

    async def revoke_subscription(
        self, actor: Actor, sub_id: str, *, reason: str | None = None
    ) -> Subscription:
        return await self._decide(actor, sub_id, "revoke", reason)

    async def _decide(
        self, actor: Actor, sub_id: str, action: str, reason: str | None
    ) -> Subscription:
        start, end = _TRANSITIONS[action]
        reason = check_text(reason, "reason", limit=2000)
        async with self._write(actor) as tx:
            before = subscription_of(await tx.row(subscriptions, sub_id, "subscription"))
            if before.status is not start:
                raise Conflict(
                    f"cannot {action} subscription {sub_id!r}: it is {before.status.value}, "
                    f"not {start.value}"
                )
            await tx.execute(
                sa.update(subscriptions)
                .where(subscriptions.c.id == sub_id)
                .values(status=end.value, decided_by=actor.name, decided_at=tx.at, reason=reason)
            )
            after = subscription_of(await tx.row(subscriptions, sub_id, "subscription"))
            await tx.audit(action, "subscription", sub_id, before.tenant_id, before, after)
        return after

    # --- audit ------------------------------------------------------------------------------

    async def record_refusal(
        self,
        actor: Actor,
        *,
        object_type: str,
        object_id: str,
        tenant_id: str | None,
        attempt: dict[str, object],
    ) -> None:
        """An audit entry (action ``refuse``) for a refused request: ``after`` holds what was
        attempted. Nothing changed, so the identity version stays as it is."""
        entry = {
            "at": now(),
            "actor": actor.name[:512],
            "actor_tenant_id": actor.tenant_id,
            "action": "refuse",
            "object_type": object_type[:32],
            "object_id": object_id[:64],
            "tenant_id": tenant_id,
            "before": None,
            "after": attempt,
            "request_id": actor.request_id,
        }
        async with self.database.engine.begin() as connection:
            appended = await audit_chain.append(connection, [entry])
        audit_chain.published(self.database, appended)

    async def list_audit(
        self,
        *,
        tenant_id: str | None = None,
        action: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[AuditEntry]:
        """Newest first. ``since`` is inclusive, ``until`` exclusive (epoch seconds)."""
        a = audit_log.c
        since, until = check_time(since, "since"), check_time(until, "until")
        where = equal_to(
            audit_log,
            tenant_id=tenant_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            actor=actor,
        )
        if since is not None:
            where.append(a.at >= since)
        if until is not None:
            where.append(a.at < until)
        return await self._page(audit_log, where, _audit_of, limit, offset, (a.id.desc(),))

    # --- the hot path's cache ----------------------------------------------------------------

    async def version(self) -> int:
        """The identity version: every mutation bumps it, so a changed value means reload."""
        async with self.database.engine.connect() as connection:
            return int((await connection.execute(_VERSION)).scalar_one())

    async def snapshot(self) -> Snapshot:
        """Everything the hot path needs, consistent as of one version.

        The reads share one connection and are fenced by the version: when it is the
        same before and after, no mutation committed in between (each bumps it in its
        own transaction), whatever the engine's isolation level. Otherwise: read again.
        """
        async with self.database.engine.connect() as connection:
            for _ in range(_SNAPSHOT_ATTEMPTS):
                version = int((await connection.execute(_VERSION)).scalar_one())
                shown_since = now() - REVOKED_KEYS_SHOWN
                key_rows = await connection.execute(
                    sa.select(api_keys).where(
                        sa.or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > shown_since)
                    )
                )
                keys = [key_of(row) for row in key_rows]
                snapshot = Snapshot(
                    version=version,
                    tenants=[
                        tenant_of(row) for row in await connection.execute(sa.select(tenants))
                    ],
                    teams=[team_of(row) for row in await connection.execute(sa.select(teams))],
                    apps=[app_of(row) for row in await connection.execute(sa.select(apps))],
                    users=[user_of(row) for row in await connection.execute(sa.select(users))],
                    keys=keys,
                    approved=[
                        (row[0], row[1])
                        for row in await connection.execute(
                            sa.select(subscriptions.c.app_id, subscriptions.c.model).where(
                                subscriptions.c.status == S.APPROVED.value
                            )
                        )
                    ],
                )
                if int((await connection.execute(_VERSION)).scalar_one()) == version:
                    return snapshot
                await connection.rollback()  # end the statement's snapshot before re-reading
        raise RuntimeError("the identity records kept changing while being read; try again")


_VERSION = sa.select(identity_version.c.version).where(identity_version.c.id == 1)


def _audit_of(row: Any) -> AuditEntry:
    """An audit row (its columns are in the record's field order)."""
    return AuditEntry(
        int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10]
    )
