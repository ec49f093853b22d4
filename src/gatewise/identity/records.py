"""The identity records as the store returns them (plain, immutable values).

Times are UTC epoch seconds (floats); ``allowed_models`` is a list of model
names or glob patterns (``gpt-4o*``), or None for "no restriction at this
level". A caller's effective model access is the intersection of the lists
of its tenant, team, app and key. ``id`` values carry a type prefix
(``ten_``, ``team_``, ``app_``, ``usr_``, ``key_``, ``sub_``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gatewise.identity.roles import Role


class Status(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class SubscriptionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str  # unique slug, referenced from the config (e.g. OIDC rules)
    display_name: str | None
    allowed_models: list[str] | None
    status: Status
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    tenant_id: str
    name: str  # unique within the tenant
    allowed_models: list[str] | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class App:
    """A service account: what a program calls as. Subscriptions belong to apps."""

    id: str
    tenant_id: str
    team_id: str | None
    name: str  # unique within the tenant
    role: Role  # usually CONSUMER
    allowed_models: list[str] | None
    status: Status
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class User:
    id: str
    tenant_id: str | None  # None only for platform admins
    team_id: str | None
    email: str  # unique within the tenant (among platform admins, for those without one)
    role: Role
    status: Status
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A virtual key's record: never its plaintext; ``key_hash`` is the SHA-256 (hex)."""

    id: str  # "key_" + kid
    kid: str
    prefix: str  # "gw-" + kid: how the key is shown
    key_hash: str
    tenant_id: str | None  # None only for a platform admin's key
    app_id: str | None  # exactly one of app_id / user_id is set
    user_id: str | None
    name: str
    role: Role | None  # narrows the owner's role; None: the owner's role
    allowed_models: list[str] | None
    tags: list[str] = field(default_factory=list)
    created_at: float = 0.0
    expires_at: float | None = None
    revoked_at: float | None = None
    replaced_by: str | None = None  # id of the key that rotated this one


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    tenant_id: str
    app_id: str
    model: str
    status: SubscriptionStatus
    requested_by: str
    requested_at: float
    note: str | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    actor: str  # e.g. "key:key_abc", "oidc:gitlab:project_path:g/p:...", "cli:alice"
    actor_tenant_id: str | None
    # create | update | delete | revoke | rotate | request | approve | reject, or refuse:
    # a refused admin request (``after`` holds what was attempted; nothing changed)
    action: str
    object_type: str  # tenant | team | app | user | key | subscription
    object_id: str
    tenant_id: str | None  # the tenant the object belongs to (for scoping audit reads)
    before: dict[str, object] | None
    after: dict[str, object] | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs a mutation, written to the audit table with it."""

    name: str
    tenant_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the hot path needs, loaded in one go and cached in memory."""

    version: int
    tenants: list[Tenant]
    teams: list[Team]
    apps: list[App]
    users: list[User]
    keys: list[ApiKey]  # not revoked, or revoked within the last hour
    approved: list[tuple[str, str]]  # (app_id, model) with an approved subscription
