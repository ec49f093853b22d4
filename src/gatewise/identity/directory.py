"""The in-memory directory of callers: what the hot path consults instead of the database.

A ``Directory`` is built from one ``Snapshot`` of the identity records and
never changes; the ``IdentityCache`` swaps in a new one when the records'
version moves. Each key's ``Principal`` (role, tenant, model access) is worked
out here, once per snapshot, so authenticating a request costs a dict lookup
and a hash comparison. A key's role is its owner's *current* role narrowed by
the key's own (``roles.narrower``): demoting a user or an app demotes its keys
with the next snapshot, and a key whose role no longer fits under its owner's
at all is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gatewise.identity.model_access import ModelAccess
from gatewise.identity.principal import Principal
from gatewise.identity.records import App, Snapshot, Status, Team, Tenant, User
from gatewise.identity.roles import Role, narrower


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key as the hot path needs it. ``principal`` is None when its owner is disabled."""

    key_hash: bytes
    expires_at: float | None
    revoked_at: float | None
    principal: Principal | None
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class CallerScope:
    """A tenant/team/app resolved by name (OIDC rules name them) with its access chain."""

    tenant: Tenant
    team: Team | None
    app: App | None


class Directory:
    """All callers of one identity version, indexed for the hot path."""

    __slots__ = (
        "_apps_by_name",
        "_teams_by_name",
        "approved",
        "apps_by_id",
        "keys",
        "teams_by_id",
        "tenants_by_id",
        "tenants_by_name",
        "version",
    )

    def __init__(self, snapshot: Snapshot) -> None:
        self.version = snapshot.version
        tenants = {t.id: t for t in snapshot.tenants}
        teams = {t.id: t for t in snapshot.teams}
        apps = {a.id: a for a in snapshot.apps}
        users = {u.id: u for u in snapshot.users}
        self.tenants_by_name: dict[str, Tenant] = {t.name: t for t in snapshot.tenants}
        self.tenants_by_id: dict[str, Tenant] = tenants
        self.teams_by_id: dict[str, Team] = teams
        self.apps_by_id: dict[str, App] = apps
        self._teams_by_name = {(t.tenant_id, t.name): t for t in snapshot.teams}
        self._apps_by_name = {(a.tenant_id, a.name): a for a in snapshot.apps}
        self.approved: frozenset[tuple[str, str]] = frozenset(snapshot.approved)
        self.keys: dict[str, KeyEntry] = {}
        for key in snapshot.keys:
            app = apps.get(key.app_id) if key.app_id else None
            user = users.get(key.user_id) if key.user_id else None
            tenant = tenants.get(key.tenant_id) if key.tenant_id else None
            team_id = app.team_id if app else (user.team_id if user else None)
            team = teams.get(team_id) if team_id else None
            reason = _disabled_reason(tenant, key.tenant_id, app, user)
            role: Role | None = None
            if reason is None:
                owner_role = app.role if app else user.role  # type: ignore[union-attr]
                role = owner_role if key.role is None else narrower(key.role, owner_role)
                if role is None:
                    reason = (
                        f"its role '{key.role}' does not fit under its "
                        f"{'app' if app else 'user'}'s current role '{owner_role}'"
                    )
            principal = None
            if role is not None:
                levels: list[Sequence[str] | None] = [
                    tenant.allowed_models if tenant else None,
                    team.allowed_models if team else None,
                    app.allowed_models if app else None,
                    key.allowed_models,
                ]
                principal = Principal(
                    kind="key",
                    name=f"key:{key.id}",
                    role=role,
                    owner=(app.id if app else user.id),  # type: ignore[union-attr]
                    tenant_id=key.tenant_id,
                    team_id=team_id,
                    app_id=key.app_id,
                    user_id=key.user_id,
                    key_id=key.id,
                    access=ModelAccess(levels),
                    tags=tuple(key.tags),
                )
            self.keys[key.kid] = KeyEntry(
                key_hash=bytes.fromhex(key.key_hash),
                expires_at=key.expires_at,
                revoked_at=key.revoked_at,
                principal=principal,
                disabled_reason=reason,
            )

    def scope(self, tenant: str, team: str | None, app: str | None) -> CallerScope | str:
        """Resolve names from an OIDC rule; a string says what is missing or disabled."""
        found = self.tenants_by_name.get(tenant)
        if found is None:
            return f"tenant {tenant!r} does not exist"
        if found.status is not Status.ACTIVE:
            return f"tenant {tenant!r} is disabled"
        team_record = self._teams_by_name.get((found.id, team)) if team else None
        if team and team_record is None:
            return f"team {team!r} does not exist in tenant {tenant!r}"
        app_record = self._apps_by_name.get((found.id, app)) if app else None
        if app and app_record is None:
            return f"app {app!r} does not exist in tenant {tenant!r}"
        if app_record is not None and app_record.status is not Status.ACTIVE:
            return f"app {app!r} is disabled"
        return CallerScope(found, team_record, app_record)

    def config_names(
        self, tenant_id: str, team_id: str | None, app_id: str | None
    ) -> tuple[str, str | None, str | None]:
        """How config sections that assign by caller (guardrail profiles, residency) name
        a caller's tenant, team and app: the tenant's name (its id when unknown),
        ``tenant/team`` and ``tenant/app`` (None where the caller has none or it is
        unknown)."""
        tenant = self.tenants_by_id.get(tenant_id)
        tenant_name = tenant.name if tenant is not None else tenant_id
        team = self.teams_by_id.get(team_id) if team_id is not None else None
        app = self.apps_by_id.get(app_id) if app_id is not None else None
        return (
            tenant_name,
            f"{tenant_name}/{team.name}" if team is not None else None,
            f"{tenant_name}/{app.name}" if app is not None else None,
        )

    def is_approved(self, app_id: str | None, model: str) -> bool:
        return app_id is not None and (app_id, model) in self.approved


def _disabled_reason(
    tenant: Tenant | None, tenant_id: str | None, app: App | None, user: User | None
) -> str | None:
    if tenant_id is not None and tenant is None:
        return "its tenant no longer exists"
    if tenant is not None and tenant.status is not Status.ACTIVE:
        return "its tenant is disabled"
    if app is None and user is None:
        return "its owner no longer exists"
    owner = app or user
    if owner is not None and owner.status is not Status.ACTIVE:
        return f"its {'app' if app else 'user'} is disabled"
    if user is not None and user.tenant_id is None and user.role is not Role.PLATFORM_ADMIN:
        return "its user has no tenant"
    return None
