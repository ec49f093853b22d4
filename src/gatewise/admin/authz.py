"""Every admin authorization decision, in one place.

Two questions, asked in this order:

1. Permission: may the caller's role do this kind of thing at all?
   (``roles.PERMISSIONS`` via ``principal.can``; missing -> 403). Each route
   declares exactly one permission through ``requires``.
2. Scope: may it do it to *this* object? A platform admin acts everywhere;
   everyone else only inside its own tenant, and an object of another tenant
   answers 404 exactly like a missing one, so existence is never revealed.
   A developer writes only apps of its own team and their keys (or its own
   user keys); a consumer sees and requests only its own app's subscriptions.
   Nobody grants, or manages an identity holding, a role above its own.

List filters naming another tenant answer an empty page (never an error).
Refusals (401, 403, and the 404 of an object that exists in another tenant:
``OutOfScope``) are written to the audit trail by ``trail.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Literal, TypeVar

from fastapi import Request

from gatewise.admin.trail import note_principal
from gatewise.core.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from gatewise.identity.principal import Principal
from gatewise.identity.records import Actor, ApiKey, App, Team, User
from gatewise.identity.roles import PERMISSIONS, Permission, Role, may_grant
from gatewise.store.identity import IdentityStore, NotFound

Authenticate = Callable[[dict[bytes, bytes]], Awaitable[Principal]]
T = TypeVar("T")


DocsMode = Literal["public", "authenticated", "off"]


@dataclass(frozen=True, slots=True)
class AdminOptions:
    """The config's say over the admin API, read per request (a reload applies at once)."""

    docs: DocsMode = "authenticated"  # see docs.py
    access_log: bool = False  # one line per admin request (server.access_log)


@dataclass(frozen=True, slots=True)
class AdminContext:
    """What the factory hands every route (kept on ``app.state.admin``)."""

    store: IdentityStore
    authenticate: Authenticate
    model_names: Callable[[], list[str]]
    options: Callable[[], AdminOptions] = AdminOptions


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one admin request, with the store to act on."""

    principal: Principal
    actor: Actor
    store: IdentityStore
    model_names: Callable[[], list[str]]

    @property
    def is_platform_admin(self) -> bool:
        return self.principal.is_platform_admin

    def sees(self, tenant_id: str | None) -> bool:
        """Whether an object of ``tenant_id`` is in the caller's scope."""
        if self.principal.is_platform_admin:
            return True
        return tenant_id is not None and tenant_id == self.principal.tenant_id


def requires(permission: Permission) -> Callable[[Request], Awaitable[Caller]]:
    """A route dependency: authenticate (401), then demand ``permission`` (403)."""

    async def dependency(request: Request) -> Caller:
        caller = await authenticate(request)
        if not caller.principal.can(permission):
            role = caller.principal.role.value
            raise PermissionDeniedError(f"The role '{role}' lacks the permission '{permission}'.")
        return caller

    dependency.__name__ = f"requires_{permission.value.replace(':', '_')}"
    return dependency


async def authenticate(request: Request) -> Caller:
    """The caller, authenticated by the configured function (it raises 401/403 itself)."""
    context: AdminContext = request.app.state.admin
    # As the gateway's front doors read them: lower-case names, the last repeat wins.
    principal = await context.authenticate(dict(request.scope["headers"]))
    if principal.kind == "anonymous":  # an open gateway serves models, never its admin API
        raise AuthenticationError(
            "The admin API needs a gateway key or a trusted token, also when auth.mode is open."
        )
    note_principal(request, principal)
    actor = Actor(
        name=principal.name,
        tenant_id=principal.tenant_id,
        request_id=request.state.request_id,
    )
    return Caller(principal, actor, context.store, context.model_names)


def permissions_of(principal: Principal) -> list[str]:
    return sorted(p.value for p in PERMISSIONS[principal.role])


# --- object scope ---------------------------------------------------------------------------


def not_found(kind: str, object_id: str, param: str | None = None) -> NotFoundError:
    """The one 404 for "missing" and "not yours": the same message either way."""
    return NotFoundError(f"No {kind} with id '{object_id}'.", param=param)


class OutOfScope(NotFoundError):
    """The 404 of an object that exists outside the caller's tenant: answered exactly like
    ``not_found``, and recorded in the platform's audit trail as a refusal."""

    def __init__(self, kind: str, object_id: str, param: str | None = None) -> None:
        super().__init__(f"No {kind} with id '{object_id}'.", param=param)
        self.kind = kind
        self.object_id = object_id


async def fetch(
    caller: Caller,
    getter: Callable[[str], Awaitable[T]],
    object_id: str,
    kind: str,
    *,
    param: str | None = None,
) -> T:
    """The object if it exists and is in the caller's scope, else the uniform 404."""
    try:
        record = await getter(object_id)
    except NotFound:
        raise not_found(kind, object_id, param) from None
    tenant_id = object_id if kind == "tenant" else getattr(record, "tenant_id", None)
    if not caller.sees(tenant_id):
        raise OutOfScope(kind, object_id, param)
    return record


def creation_tenant(caller: Caller, requested: str | None) -> str | None:
    """The tenant a new object goes to: the caller's own unless a platform admin names one."""
    if caller.is_platform_admin:
        return requested
    own = caller.principal.tenant_id
    if own is None:
        raise PermissionDeniedError("This caller belongs to no tenant and cannot create objects.")
    if requested is not None and requested != own:
        # Audited as an attempt on another tenant whether or not that tenant exists.
        raise OutOfScope("tenant", requested, "tenant_id")
    return own


@dataclass(frozen=True, slots=True)
class Filter:
    """A list filter after scoping: its value, or ``empty`` when it names what the caller
    may not see (another tenant, another app): then the list is empty, not an error."""

    value: str | None
    empty: bool = False


NOTHING = Filter(None, empty=True)


def list_tenant(caller: Caller, requested: str | None) -> Filter:
    """The tenant filter a list runs with: forced to the caller's own unless platform admin."""
    if caller.is_platform_admin:
        return Filter(requested)
    own = caller.principal.tenant_id
    if own is None or (requested is not None and requested != own):
        return NOTHING
    return Filter(own)


def list_tenant_ids(caller: Caller) -> Collection[str] | None:
    """Tenant ids a tenant list may show (None: all)."""
    if caller.is_platform_admin:
        return None
    own = caller.principal.tenant_id
    return [own] if own is not None else []


# --- roles ------------------------------------------------------------------------------------


def check_grant(caller: Caller, role: Role) -> None:
    """Nobody gives a role above its own (and only platform admins create platform admins)."""
    if not may_grant(caller.principal.role, role):
        raise PermissionDeniedError(
            f"The role '{caller.principal.role.value}' may not grant the role '{role.value}'.",
            param="role",
        )


def check_manage(caller: Caller, holder_role: Role, kind: str) -> None:
    """Nobody changes, deletes or makes keys for an identity that outranks it."""
    if not may_grant(caller.principal.role, holder_role):
        raise PermissionDeniedError(
            f"The role '{caller.principal.role.value}' may not manage a {kind} "
            f"with the role '{holder_role.value}'."
        )


# --- teams: where a developer may write -------------------------------------------------------


def team_bound(caller: Caller) -> bool:
    """Developers write only inside their own team."""
    return caller.principal.role is Role.DEVELOPER


def check_team_write(caller: Caller, team_id: str | None) -> None:
    """A developer's writes must land in its own team (403 otherwise)."""
    if not team_bound(caller):
        return
    own = caller.principal.team_id
    if own is None:
        raise PermissionDeniedError("A developer without a team cannot change apps.")
    if team_id != own:
        raise PermissionDeniedError("A developer may change only the apps of its own team.")


def check_app_write(caller: Caller, app: App) -> None:
    check_team_write(caller, app.team_id)
    check_manage(caller, app.role, "app")


def check_user_keys(caller: Caller, user: User) -> None:
    """Keys of a user: developers only their own; others not for users that outrank them."""
    if team_bound(caller) and user.id != caller.principal.user_id:
        raise PermissionDeniedError("A developer may manage only its own user keys.")
    check_manage(caller, user.role, "user")


# --- subscriptions: consumers see only their own app ------------------------------------------


def app_bound(caller: Caller) -> bool:
    """Callers that cannot read apps (consumers) see only their own app's subscriptions."""
    return not caller.principal.can(Permission.APPS_READ)


def sees_app(caller: Caller, app_id: str) -> bool:
    return not app_bound(caller) or app_id == caller.principal.app_id


def list_app(caller: Caller, requested: str | None) -> Filter:
    """The app filter of a subscription list: a consumer's own app only."""
    if not app_bound(caller):
        return Filter(requested)
    own = caller.principal.app_id
    if own is None or (requested is not None and requested != own):
        return NOTHING
    return Filter(own)


# --- references between objects -------------------------------------------------------------


async def team_in(caller: Caller, team_id: str, tenant_id: str | None) -> Team:
    """A referenced team: visible to the caller (404) and in the object's tenant (400)."""
    team = await fetch(caller, caller.store.get_team, team_id, "team", param="team_id")
    if tenant_id is not None and team.tenant_id != tenant_id:
        raise InvalidRequestError(
            f"team_id: the team '{team_id}' belongs to another tenant.", param="team_id"
        )
    return team


def object_tenant(caller: Caller, requested: str | None, team: Team | None) -> str:
    """The tenant of a new app or user: named, else its team's, else the caller's own."""
    if requested is None and team is not None:
        requested = team.tenant_id
    tenant_id = creation_tenant(caller, requested)
    if tenant_id is None:
        raise InvalidRequestError("Missing required parameter: 'tenant_id'.", param="tenant_id")
    return tenant_id


# --- keys: who may manage the keys of which owner --------------------------------------------


async def key_owner_role(caller: Caller, app_id: str | None, user_id: str | None) -> Role:
    """The role of a key's owner, after checking the caller may manage that owner's keys."""
    if app_id is not None:
        app = await fetch(caller, caller.store.get_app, app_id, "app", param="app_id")
        check_app_write(caller, app)
        return app.role
    if user_id is None:
        raise InvalidRequestError("Exactly one of 'app_id' and 'user_id' is required.")
    user = await fetch(caller, caller.store.get_user, user_id, "user", param="user_id")
    check_user_keys(caller, user)
    return user.role


async def key_for_write(caller: Caller, key_id: str) -> ApiKey:
    """A key the caller may change, revoke or rotate (404 outside its scope, else 403)."""
    key = await fetch(caller, caller.store.get_key, key_id, "key")
    try:
        await key_owner_role(caller, key.app_id, key.user_id)
    except NotFoundError:
        # The owner is gone (its keys stay, revoked): only tenant-wide writers touch them.
        if team_bound(caller):
            raise PermissionDeniedError(
                "Only tenant admins manage the keys of a deleted owner."
            ) from None
    return key
