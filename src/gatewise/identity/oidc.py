"""Callers that present a JWT from a trusted OIDC issuer (GitLab CI, GitHub Actions, Keycloak...).

Why this shape: a CI job should call the gateway with the short-lived token
its platform mints for it, not with a long-lived gateway key stored in CI
variables. The token's unverified ``iss`` only *selects* the issuer; the
token is then verified with that issuer's published keys and its configured
algorithms alone (never ``none`` or HMAC, and the key type must fit the
algorithm, so RS/HS confusion is impossible). Audience, expiry, not-before
and issued-at are checked with the issuer's leeway. The verified claims then
go through the issuer's rules (first match wins) to a tenant, team, app and
role. A verified token is cached by its SHA-256 until it expires (at most five
minutes), so a repeated token costs one hash and one dict lookup.

Errors: anything wrong with the token is a 401 whose message names the
problem in general terms and never echoes the token; a good token that no rule
admits is a 403.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)
from jwt.types import Options

from gatewise.config.auth import ClaimPattern, OIDCIssuerConfig, OIDCRule
from gatewise.core.errors import AuthenticationError, PermissionDeniedError
from gatewise.identity.jwks import FETCH_TIMEOUT, JWKSCache, JWKSUnavailableError
from gatewise.identity.roles import Role
from gatewise.net.http1 import HTTPClient

__all__ = ["OIDCIdentity", "OIDCVerifier", "TokenCache", "rule_matches"]

#: A verified token is trusted from the cache for at most this long (and never past its exp).
CACHE_SECONDS = 300.0
CACHE_ENTRIES = 10_000
# exp, iss and aud must be present; keys below the recommended size (RSA < 2048) are refused.
_OPTIONS: Options = {"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True}


@dataclass(frozen=True, slots=True)
class OIDCIdentity:
    """Who a verified token speaks for, per the first rule that admitted it."""

    issuer_name: str
    subject: str
    tenant: str  # tenant name (slug) from the rule
    team: str | None
    app: str | None
    role: Role
    models: list[str] | None
    expires_at: float  # the token's exp (epoch seconds)
    claims: Mapping[str, Any]


# -- rule matching -----------------------------------------------------------------


def _as_text(value: Any) -> str | None:
    """A claim value as the text rules compare against (GitLab sends bools as strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    return None


def _scalar_matches(expected: str | bool | int, actual: Any) -> bool:
    text = _as_text(actual)
    if text is None:
        return False
    if isinstance(expected, bool | int):
        return text == _as_text(expected)
    return text == expected or ("*" in expected and fnmatchcase(text, expected))


def _claim_matches(expected: ClaimPattern, actual: Any) -> bool:
    """``expected`` (a value or a list of alternatives) against a claim (a value or a list)."""
    alternatives = expected if isinstance(expected, list) else (expected,)
    values = actual if isinstance(actual, list) else (actual,)
    return any(_scalar_matches(e, a) for e in alternatives for a in values)


def rule_matches(rule: OIDCRule, claims: Mapping[str, Any]) -> bool:
    """Every claim the rule lists is present and matches (a missing claim never matches)."""
    for name, expected in rule.match.items():
        if name not in claims or not _claim_matches(expected, claims[name]):
            return False
    return True


# -- the verified-token cache ----------------------------------------------------------


class TokenCache:
    """SHA-256(token) -> (identity, trusted until); bounded, the oldest entries go first."""

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int = CACHE_ENTRIES) -> None:
        self._limit = limit
        self._entries: dict[bytes, tuple[OIDCIdentity, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes, now: float) -> OIDCIdentity | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._entries[digest]
            return None
        return entry[0]

    def put(self, digest: bytes, identity: OIDCIdentity, now: float) -> None:
        until = min(identity.expires_at, now + CACHE_SECONDS)
        if until <= now:
            return
        entries = self._entries
        if digest not in entries and len(entries) >= self._limit:
            del entries[next(iter(entries))]
        entries[digest] = (identity, until)

    def clear(self) -> None:
        self._entries.clear()


# -- the verifier ------------------------------------------------------------------


class _Issuer:
    __slots__ = ("algorithms", "audiences", "config", "jwks")

    def __init__(self, config: OIDCIssuerConfig, jwks: JWKSCache) -> None:
        self.config = config
        self.jwks = jwks
        self.algorithms = frozenset(config.algorithms)
        self.audiences = config.audiences


def _bad(message: str) -> AuthenticationError:
    return AuthenticationError(message)


class OIDCVerifier:
    """Verifies bearer JWTs of the configured issuers and maps them to identities."""

    def __init__(
        self,
        issuers: Sequence[OIDCIssuerConfig],
        *,
        client: HTTPClient | None = None,
        fetch_timeout: float = FETCH_TIMEOUT,
        clock: Callable[[], float] = time.time,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self._own_client = client is None
        self._client = client or HTTPClient(limit=4, connect_timeout=fetch_timeout)
        self._clock = clock
        self._issuers: dict[str, _Issuer] = {
            config.issuer: _Issuer(
                config,
                JWKSCache(
                    config.jwks_url,
                    client=self._client,
                    cache_seconds=config.jwks_cache_seconds,
                    min_refresh_seconds=config.jwks_min_refresh_seconds,
                    timeout=fetch_timeout,
                    name=config.name,
                ),
            )
            for config in issuers
        }
        self.cache = TokenCache(cache_entries)

    @property
    def configured(self) -> bool:
        return bool(self._issuers)

    async def start(self) -> None:
        """Start fetching every issuer's keys in the background (a failure is only logged)."""
        for issuer in self._issuers.values():
            issuer.jwks.prefetch()

    async def close(self) -> None:
        await asyncio.gather(*(issuer.jwks.close() for issuer in self._issuers.values()))
        if self._own_client:
            await self._client.close()

    def jwks(self, issuer_name: str) -> JWKSCache:
        """The key cache of the issuer named ``issuer_name`` (tests, metrics)."""
        for issuer in self._issuers.values():
            if issuer.config.name == issuer_name:
                return issuer.jwks
        raise KeyError(issuer_name)

    @staticmethod
    def looks_like_jwt(token: bytes) -> bool:
        """Cheap triage between a JWT and a gateway key: a JSON header and three parts."""
        return token.startswith(b"eyJ") and token.count(b".") == 2

    async def verify(self, token: bytes) -> OIDCIdentity:
        """Who ``token`` speaks for; AuthenticationError (401) or PermissionDeniedError (403).

        A token verified before and not yet expired costs one SHA-256 and one dict lookup.
        """
        digest = hashlib.sha256(token).digest()
        now = self._clock()
        identity = self.cache.get(digest, now)
        if identity is not None:
            return identity
        identity = await self._verify(token, now)
        self.cache.put(digest, identity, self._clock())
        return identity

    async def _verify(self, token: bytes, now: float) -> OIDCIdentity:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (PyJWTError, ValueError, TypeError):
            raise _bad("the bearer token is not a well-formed JWT") from None
        iss = unverified.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise _bad("the token's issuer is not trusted by this gateway")
        name = issuer.config.name
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in issuer.algorithms:
            raise _bad(f"the token's signing algorithm is not accepted for issuer {name!r}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _bad("the bearer token is not a well-formed JWT")
        try:
            keys = await issuer.jwks.keys_for(kid, alg)
        except JWKSUnavailableError:
            raise _bad(f"cannot verify tokens of issuer {name!r} right now") from None
        if not keys:
            raise _bad(f"the token was signed with a key that issuer {name!r} does not publish")
        claims = self._decode(token, issuer, keys, alg)
        return self._admit(issuer, claims)

    def _decode(self, token: bytes, issuer: _Issuer, keys: list[Any], alg: str) -> dict[str, Any]:
        config = issuer.config
        for index, key in enumerate(keys):
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key=key,
                    algorithms=[alg],
                    audience=issuer.audiences,
                    issuer=config.issuer,
                    leeway=config.leeway_seconds,
                    options=_OPTIONS,
                )
                return claims
            except InvalidSignatureError:
                if index + 1 < len(keys):
                    continue  # no kid: try the issuer's other fitting keys
                raise _bad("the token's signature is not valid") from None
            except ExpiredSignatureError:
                raise _bad("the token has expired") from None
            except ImmatureSignatureError:
                raise _bad("the token is not valid yet (nbf or iat is in the future)") from None
            except InvalidAudienceError:
                raise _bad("the token's audience is not accepted") from None
            except InvalidIssuerError:
                raise _bad("the token's issuer is not trusted by this gateway") from None
            except MissingRequiredClaimError as exc:
                raise _bad(f"the token has no {exc.claim!r} claim") from None
            except InvalidIssuedAtError:
                raise _bad("the token's iat claim is not valid") from None
            except (PyJWTError, ValueError, TypeError):
                raise _bad("the token could not be verified") from None
        raise _bad("the token's signature is not valid")

    def _admit(self, issuer: _Issuer, claims: dict[str, Any]) -> OIDCIdentity:
        config = issuer.config
        subject = _as_text(claims.get(config.subject_claim))
        if not subject:
            raise _bad(f"the token has no {config.subject_claim!r} claim")
        for rule in config.rules:
            if rule_matches(rule, claims):
                return OIDCIdentity(
                    issuer_name=config.name,
                    subject=subject,
                    tenant=rule.tenant,
                    team=rule.team,
                    app=rule.app,
                    role=Role(rule.role),
                    models=list(rule.models) if rule.models is not None else None,
                    expires_at=float(claims["exp"]),
                    claims=claims,
                )
        raise PermissionDeniedError(
            f"no auth.oidc rule of issuer {config.name!r} admits this token"
        )
