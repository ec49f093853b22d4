"""Roles and the one permission table that says what each role may do.

Every authorization decision in the gateway and the admin API reads this
table; nothing else grants a permission. Scope is separate from permission:
a platform admin acts on every tenant, every other role only inside its own
tenant (and a developer writes only inside its own team).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    DEVELOPER = "developer"
    VIEWER = "viewer"
    CONSUMER = "consumer"


class Permission(StrEnum):
    MODELS_CALL = "models:call"
    TENANTS_READ = "tenants:read"
    TENANTS_WRITE = "tenants:write"
    TEAMS_READ = "teams:read"
    TEAMS_WRITE = "teams:write"
    APPS_READ = "apps:read"
    APPS_WRITE = "apps:write"
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    KEYS_READ = "keys:read"
    KEYS_WRITE = "keys:write"
    SUBSCRIPTIONS_READ = "subscriptions:read"
    SUBSCRIPTIONS_REQUEST = "subscriptions:request"
    SUBSCRIPTIONS_DECIDE = "subscriptions:decide"
    AUDIT_READ = "audit:read"
    #: Dashboards' numbers (admin/analytics): the roles that read usage hold it.
    ANALYTICS_READ = "analytics:read"
    #: The deployments' live routing state: shared infrastructure, the platform's alone.
    DEPLOYMENTS_READ = "deployments:read"
    #: The gateway's live config (``GET /admin/v1/config``) and reloading it: the platform's.
    CONFIG_READ = "config:read"
    CONFIG_WRITE = "config:write"


P = Permission
_READ_TENANT = frozenset(
    {
        P.TENANTS_READ,
        P.TEAMS_READ,
        P.APPS_READ,
        P.USERS_READ,
        P.KEYS_READ,
        P.SUBSCRIPTIONS_READ,
    }
)

#: The permission table. ``TENANTS_WRITE`` (create/delete tenants) and ``DEPLOYMENTS_READ``
#: are the platform admin's alone.
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PLATFORM_ADMIN: frozenset(Permission),
    Role.TENANT_ADMIN: frozenset(Permission)
    - {P.TENANTS_WRITE, P.DEPLOYMENTS_READ, P.CONFIG_READ, P.CONFIG_WRITE},
    Role.DEVELOPER: _READ_TENANT
    | {P.MODELS_CALL, P.APPS_WRITE, P.KEYS_WRITE, P.SUBSCRIPTIONS_REQUEST},
    Role.VIEWER: _READ_TENANT | {P.AUDIT_READ, P.ANALYTICS_READ},
    Role.CONSUMER: frozenset({P.MODELS_CALL, P.SUBSCRIPTIONS_REQUEST, P.SUBSCRIPTIONS_READ}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]


def may_grant(granter: Role, granted: Role) -> bool:
    """Whether ``granter`` may give ``granted`` to a user, app or key: only when ``granted``
    has no permission ``granter`` lacks (a viewer's audit access is not a developer's to give,
    and a key may narrow its owner's role, never widen it)."""
    return PERMISSIONS[granted] <= PERMISSIONS[granter]


def narrower(first: Role, second: Role) -> Role | None:
    """The role a caller holding both ``first`` and ``second`` acts with: the one of the two
    that the other may grant, else the richest role below both, else None (no role fits:
    developer and viewer, say, each hold a permission the other lacks, and the roles below
    both of them hold ``models:call`` or ``audit:read``)."""
    if may_grant(first, second):
        return second
    if may_grant(second, first):
        return first
    common = PERMISSIONS[first] & PERMISSIONS[second]
    below = [role for role in Role if PERMISSIONS[role] <= common]
    return max(below, key=lambda role: len(PERMISSIONS[role]), default=None)
