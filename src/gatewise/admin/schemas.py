"""Request and response bodies of the admin API (pydantic: validation and OpenAPI docs).

Times are UTC epoch seconds (numbers) everywhere, in and out, as in the store.
Inputs refuse unknown fields, so a typo is a 400 naming it instead of a silent
no-op. PATCH bodies apply only the fields present; ``null`` clears a nullable
field (``allowed_models: null`` = no restriction at this level); an empty body
changes nothing (200 with the object as it is; nothing is written or audited).
Times and offsets are bounded (finite, 0 to ``MAX_EPOCH`` / ``MAX_OFFSET``), so
no value reaches the database that it cannot hold. Key records
never carry the key's hash, and its plaintext appears once, on creation/rotation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatewise.identity.records import (
    ApiKey,
    App,
    AuditEntry,
    Status,
    Subscription,
    SubscriptionStatus,
    Team,
    Tenant,
    User,
)
from gatewise.identity.roles import Role
from gatewise.store.identity import Page
from gatewise.store.identity_base import MAX_EPOCH, MAX_OFFSET

T = TypeVar("T")
EPOCH = "UTC epoch seconds"
#: A time in a body: finite epoch seconds from 1970 to the end of year 9999.
Moment = Annotated[float, Field(ge=0, le=MAX_EPOCH, allow_inf_nan=False)]
Models = Annotated[
    list[str] | None,
    Field(
        description="Model names or glob patterns (`gpt-4o*`) this level allows; "
        "null: no restriction at this level. Effective access is the intersection of the "
        "tenant's, team's, app's and key's lists."
    ),
]
Name = Annotated[
    str,
    Field(
        max_length=63,
        description="Lowercase slug: `^[a-z0-9][a-z0-9._-]{0,62}$`",
        examples=["payments"],
    ),
]


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("may not be null")
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOut(BaseModel, Generic[T]):
    """One page of a list: ``total`` counts every match, ignoring limit/offset."""

    data: list[T]
    total: int
    limit: int
    offset: int


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorOut(BaseModel):
    """The error envelope, as on the OpenAI routes."""

    error: ErrorBody


# --- me ----------------------------------------------------------------------------------------


class MeOut(BaseModel):
    kind: str = Field(description="key | oidc | anonymous")
    name: str = Field(description="How the caller appears in the audit trail")
    role: Role
    tenant_id: str | None
    team_id: str | None
    app_id: str | None
    user_id: str | None
    key_id: str | None
    permissions: list[str]


# --- tenants -----------------------------------------------------------------------------------


class TenantCreate(_Input):
    name: Name
    display_name: str | None = Field(None, max_length=256)
    allowed_models: Models = None


class TenantUpdate(_Input):
    display_name: str | None = Field(None, max_length=256)
    allowed_models: Models = None
    status: Status | None = Field(None, description="active | disabled (platform admins only)")

    _status = field_validator("status")(_not_null)


class TenantOut(_Output):
    id: str
    name: str
    display_name: str | None
    allowed_models: list[str] | None
    status: Status
    created_at: float = Field(description=EPOCH)
    updated_at: float = Field(description=EPOCH)

    @classmethod
    def of(cls, record: Tenant) -> TenantOut:
        return cls.model_validate(record)


# --- teams -------------------------------------------------------------------------------------


class TeamCreate(_Input):
    tenant_id: str | None = Field(None, description="Defaults to the caller's tenant")
    name: Name
    allowed_models: Models = None


class TeamUpdate(_Input):
    name: Name | None = None
    allowed_models: Models = None

    _name = field_validator("name")(_not_null)


class TeamOut(_Output):
    id: str
    tenant_id: str
    name: str
    allowed_models: list[str] | None
    created_at: float = Field(description=EPOCH)
    updated_at: float = Field(description=EPOCH)

    @classmethod
    def of(cls, record: Team) -> TeamOut:
        return cls.model_validate(record)


# --- apps --------------------------------------------------------------------------------------


class AppCreate(_Input):
    tenant_id: str | None = Field(
        None, description="Defaults to the team's tenant, else to the caller's tenant"
    )
    name: Name
    team_id: str | None = None
    role: Role = Role.CONSUMER
    allowed_models: Models = None


class AppUpdate(_Input):
    name: Name | None = None
    team_id: str | None = None
    role: Role | None = None
    allowed_models: Models = None
    status: Status | None = None

    _required = field_validator("name", "role", "status")(_not_null)


class AppOut(_Output):
    id: str
    tenant_id: str
    team_id: str | None
    name: str
    role: Role
    allowed_models: list[str] | None
    status: Status
    created_at: float = Field(description=EPOCH)
    updated_at: float = Field(description=EPOCH)

    @classmethod
    def of(cls, record: App) -> AppOut:
        return cls.model_validate(record)


# --- users -------------------------------------------------------------------------------------


class UserCreate(_Input):
    email: str = Field(max_length=320)
    role: Role
    tenant_id: str | None = Field(
        None,
        description="Defaults to the team's tenant, else the caller's; "
        "only platform admins may leave a platform admin without a tenant",
    )
    team_id: str | None = None


class UserUpdate(_Input):
    team_id: str | None = None
    role: Role | None = None
    status: Status | None = None

    _required = field_validator("role", "status")(_not_null)


class UserOut(_Output):
    id: str
    tenant_id: str | None
    team_id: str | None
    email: str
    role: Role
    status: Status
    created_at: float = Field(description=EPOCH)
    updated_at: float = Field(description=EPOCH)

    @classmethod
    def of(cls, record: User) -> UserOut:
        return cls.model_validate(record)


# --- keys --------------------------------------------------------------------------------------


class KeyCreate(_Input):
    name: str = Field(min_length=1, max_length=256)
    app_id: str | None = Field(None, description="The owner: exactly one of app_id / user_id")
    user_id: str | None = None
    role: Role | None = Field(
        None, description="Narrows the owner's role (never widens it); null: the owner's role"
    )
    allowed_models: Models = None
    tags: list[str] | None = None
    expires_at: Moment | None = Field(None, description=EPOCH)


class KeyUpdate(_Input):
    name: str | None = Field(None, min_length=1, max_length=256)
    allowed_models: Models = None
    tags: list[str] | None = None
    expires_at: Moment | None = Field(None, description=EPOCH + "; null: never expires")

    _required = field_validator("name", "tags")(_not_null)


class KeyRotate(_Input):
    grace_seconds: float = Field(
        86400, ge=0, le=90 * 86400, description="How long the old key keeps working"
    )


class KeyOut(_Output):
    """A key as shown after creation: its prefix, never its secret or its hash."""

    id: str
    prefix: str = Field(description="`gw-<kid>`: the public part of the key")
    name: str
    tenant_id: str | None
    app_id: str | None
    user_id: str | None
    role: Role | None
    allowed_models: list[str] | None
    tags: list[str]
    created_at: float = Field(description=EPOCH)
    expires_at: float | None = Field(description=EPOCH)
    revoked_at: float | None = Field(description=EPOCH)
    replaced_by: str | None = Field(description="The id of the key that rotated this one")

    @classmethod
    def of(cls, record: ApiKey) -> KeyOut:
        return cls.model_validate(record)


class KeyCreated(KeyOut):
    key: str = Field(description="The plaintext key: shown now and never again")

    @classmethod
    def with_secret(cls, record: ApiKey, plaintext: str) -> KeyCreated:
        return cls.model_validate({**KeyOut.of(record).model_dump(), "key": plaintext})


# --- subscriptions -----------------------------------------------------------------------------


class SubscriptionRequest(_Input):
    app_id: str | None = Field(None, description="Defaults to the caller's own app")
    model: str = Field(min_length=1, max_length=256)
    note: str | None = Field(None, max_length=2000)


class Decision(_Input):
    reason: str | None = Field(None, max_length=2000)


class SubscriptionOut(_Output):
    id: str
    tenant_id: str
    app_id: str
    model: str
    status: SubscriptionStatus
    requested_by: str
    requested_at: float = Field(description=EPOCH)
    note: str | None
    decided_by: str | None
    decided_at: float | None = Field(description=EPOCH)
    reason: str | None

    @classmethod
    def of(cls, record: Subscription) -> SubscriptionOut:
        return cls.model_validate(record)


# --- audit -------------------------------------------------------------------------------------


def _without_secrets(document: dict[str, Any] | None) -> dict[str, Any] | None:
    if document is None:
        return None
    return {k: v for k, v in document.items() if k != "key_hash"}


class AuditOut(_Output):
    id: int
    at: float = Field(description=EPOCH)
    actor: str
    actor_tenant_id: str | None
    action: str
    object_type: str
    object_id: str
    tenant_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None

    @classmethod
    def of(cls, record: AuditEntry) -> AuditOut:
        out = cls.model_validate(record)
        out.before = _without_secrets(out.before)
        out.after = _without_secrets(out.after)
        return out


# --- lists -------------------------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200)")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"Items to skip (0-{MAX_OFFSET:,})")]


def moment_query(description: str) -> Any:
    """A time filter in the query string: finite epoch seconds, 0 to the end of year 9999."""
    return Query(
        None,
        ge=0,
        le=MAX_EPOCH,
        allow_inf_nan=False,
        description=f"{EPOCH} (0-{MAX_EPOCH:.0f}){description}",
    )


R = TypeVar("R")


def page_of(page: Page[R], convert: Callable[[R], T]) -> PageOut[T]:
    return PageOut[T](
        data=[convert(item) for item in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


def empty_page(limit: int, offset: int) -> PageOut[Any]:
    """What a list scoped outside the caller's reach answers: nothing, not an error."""
    return PageOut[Any](data=[], total=0, limit=limit, offset=offset)
