"""The authenticated caller of one request, as every policy and the admin API see it."""

from __future__ import annotations

from dataclasses import dataclass, field

from gatewise.identity.model_access import UNRESTRICTED, ModelAccess
from gatewise.identity.roles import Permission, Role, allows


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, with everything needed to decide without a database round trip.

    ``name`` identifies the caller in audit records and logs (never a secret):
    ``key:<key id>``, ``oidc:<issuer name>:<subject>`` or ``anonymous``.
    ``owner`` scopes the caller's stored records (Responses API conversations):
    the app or user behind a key (so a rotated key keeps its conversations),
    the OIDC subject, or a hash of the presented credential when anonymous.
    """

    kind: str  # "key" | "oidc" | "anonymous"
    name: str
    role: Role
    owner: str
    tenant_id: str | None = None
    team_id: str | None = None
    app_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None
    access: ModelAccess = field(default=UNRESTRICTED)
    tags: tuple[str, ...] = ()

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN
