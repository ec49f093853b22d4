"""Authentication: turn a request's credential into a ``Principal``, from memory.

Credentials come from ``Authorization: Bearer``, ``x-api-key`` (Anthropic
clients) or ``api-key`` (Azure clients). A gateway key (``gw-...``) is found
by its public kid and checked by a constant-time hash comparison; a JWT goes
to the OIDC verifier (which caches verified tokens). Nothing here touches the
database: the ``IdentityCache`` keeps the directory current.

In ``open`` mode a request without a gateway key or JWT is served as an
anonymous consumer (for local trials); a gateway key or JWT that *is*
presented is still verified, so a bad one is never silently accepted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from gatewise.core.errors import AuthenticationError, PermissionDeniedError
from gatewise.identity.cache import IdentityCache
from gatewise.identity.keys import hash_key, kid_of, looks_like_gateway_key, same_hash
from gatewise.identity.model_access import ModelAccess
from gatewise.identity.principal import Principal
from gatewise.identity.roles import Role

if TYPE_CHECKING:
    from gatewise.identity.oidc import OIDCIdentity

_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key", b"api-key")

NO_CREDENTIAL = (
    "You didn't provide an API key. Send your gateway key as 'Authorization: Bearer gw-...' "
    "(or in the x-api-key or api-key header)."
)
_NO_HASH = bytes(32)  # compared against when no key has the presented kid
INVALID_KEY = "Incorrect API key provided. The key is unknown, malformed, revoked or expired."


class TokenVerifier(Protocol):
    def looks_like_jwt(self, token: bytes) -> bool: ...

    async def verify(self, token: bytes) -> OIDCIdentity: ...


def presented_credential(headers: dict[bytes, bytes]) -> bytes | None:
    """The caller's credential: the first of Authorization (Bearer), x-api-key, api-key."""
    for name in _CREDENTIAL_HEADERS:
        value = headers.get(name)
        if not value:
            continue
        if name == b"authorization":
            if value[:7].lower() != b"bearer ":
                continue
            value = value[7:]
        value = value.strip()
        if value:
            return value
    return None


class Authenticator:
    def __init__(
        self,
        cache: IdentityCache,
        verifier: TokenVerifier | None,
        *,
        open_mode: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._verifier = verifier
        self.open_mode = open_mode
        self._clock = clock  # the wall clock a key's expires_at is compared with
        self._oidc_principals: dict[tuple[object, ...], Principal] = {}

    async def authenticate(self, headers: dict[bytes, bytes]) -> Principal:
        credential = presented_credential(headers)
        if credential is None:
            if self.open_mode:
                return anonymous(None)
            raise AuthenticationError(NO_CREDENTIAL)
        if looks_like_gateway_key(credential):
            return self._key_principal(credential)
        if self._verifier is not None and self._verifier.looks_like_jwt(credential):
            return self._oidc_principal(await self._verifier.verify(credential))
        if self.open_mode:
            return anonymous(credential)
        raise AuthenticationError(INVALID_KEY)

    def _key_principal(self, key: bytes) -> Principal:
        kid = kid_of(key)
        entry = self._cache.directory.keys.get(kid) if kid is not None else None
        # Hash and compare even when the kid is unknown: the timing tells nothing about kids.
        matches = same_hash(hash_key(key), entry.key_hash if entry is not None else _NO_HASH)
        if entry is None or not matches:
            raise AuthenticationError(INVALID_KEY)
        if entry.revoked_at is not None:
            raise AuthenticationError(INVALID_KEY)
        if entry.expires_at is not None and entry.expires_at <= self._clock():
            raise AuthenticationError(INVALID_KEY)
        if entry.principal is None:
            raise PermissionDeniedError(f"This key cannot be used: {entry.disabled_reason}.")
        return entry.principal

    def _oidc_principal(self, identity: OIDCIdentity) -> Principal:
        directory = self._cache.directory
        models = tuple(identity.models) if identity.models is not None else None
        memo_key = (
            directory.version,
            identity.issuer_name,
            identity.subject,
            identity.tenant,
            identity.team,
            identity.app,
            identity.role,
            models,
        )
        principal = self._oidc_principals.get(memo_key)
        if principal is not None:
            return principal
        scope = directory.scope(identity.tenant, identity.team, identity.app)
        if isinstance(scope, str):
            raise PermissionDeniedError(f"This token's caller cannot be admitted: {scope}.")
        levels = [
            scope.tenant.allowed_models,
            scope.team.allowed_models if scope.team else None,
            scope.app.allowed_models if scope.app else None,
            identity.models,
        ]
        subject = f"oidc:{identity.issuer_name}:{identity.subject}"
        principal = Principal(
            kind="oidc",
            name=subject,
            role=identity.role,
            # Stored-record owners are at most 64 characters; subjects can be longer.
            owner="oidc:" + hashlib.sha256(subject.encode()).hexdigest()[:40],
            tenant_id=scope.tenant.id,
            team_id=scope.team.id if scope.team else None,
            app_id=scope.app.id if scope.app else None,
            access=ModelAccess(levels),
        )
        if len(self._oidc_principals) >= 10_000:
            self._oidc_principals.clear()
        self._oidc_principals[memo_key] = principal
        return principal


def anonymous(credential: bytes | None) -> Principal:
    """The caller of an open-mode gateway without a gateway key; owns what its credential owns."""
    owner = "anonymous" if credential is None else hashlib.sha256(credential).hexdigest()
    return Principal(kind="anonymous", name="anonymous", role=Role.CONSUMER, owner=owner)
