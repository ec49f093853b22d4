"""The ``auth:`` section: who may call the gateway, and which OIDC issuers' tokens it trusts.

``mode: keys`` (the default) means every call carries a gateway key or a JWT
from a configured issuer; ``open`` lets anonymous calls through (demos only).
Each ``oidc`` entry trusts one issuer (GitLab CI, GitHub Actions, Keycloak...):
its tokens are verified against its published keys (JWKS), and its ``rules``
map the token's claims to a tenant, team, app and role. Validation is strict
on the points that decide whether a forged token could get in: signing
algorithms (never ``none`` or HMAC), transport of the keys (https), an
audience, and at least one rule with at least one claim condition.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from gatewise.config.base import Name, Strict

#: The role names of ``gatewise.identity.roles.Role`` (config sits below identity, so the
#: names are spelled here; a unit test keeps the two lists equal).
RoleName = Literal["platform_admin", "tenant_admin", "developer", "viewer", "consumer"]

__all__ = [
    "ALLOWED_ALGORITHMS",
    "AuthConfig",
    "AuthMode",
    "ClaimPattern",
    "OIDCIssuerConfig",
    "OIDCRule",
    "RoleName",
]

AuthMode = Literal["keys", "open"]

#: Asymmetric algorithms a token may be signed with; the key type must match the family.
ALLOWED_ALGORITHMS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)

_LOOPBACK_NAMES = frozenset({"localhost"})


def _check_algorithm(value: str) -> str:
    if value in ALLOWED_ALGORITHMS:
        return value
    if value.lower() == "none":
        raise ValueError(
            "'none' means unsigned tokens, which anyone can forge; it is never accepted"
        )
    if value.upper().startswith("HS"):
        raise ValueError(
            f"{value} is a shared-secret (HMAC) algorithm; an OIDC issuer publishes public keys, "
            "and accepting HMAC would let anyone who has the public key forge tokens"
        )
    raise ValueError(f"unknown algorithm {value!r}; allowed: {', '.join(ALLOWED_ALGORITHMS)}")


Algorithm = Annotated[str, AfterValidator(_check_algorithm)]


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"the {what} must be an absolute https:// URL, got {value!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"the {what} must use https:// (plain http is allowed only for loopback hosts "
            "such as 127.0.0.1 or localhost, in tests): keys fetched or trusted over plain "
            "http could be swapped by anyone on the path"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"the {what} must not contain a user name or password")
    if parts.fragment:
        raise ValueError(f"the {what} must not contain a #fragment")
    return value


def _check_issuer(value: str) -> str:
    return _check_url(value, "issuer")


def _check_jwks_url(value: str) -> str:
    return _check_url(value, "jwks_url")


def _check_nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    return value


NonBlank = Annotated[str, AfterValidator(_check_nonblank)]

#: One expected claim value: an exact string, a glob with ``*``, a bool, or an integer.
ClaimScalar = str | bool | int
#: A rule's condition on one claim: a value, or a list of values of which any may match.
ClaimPattern = ClaimScalar | list[ClaimScalar]


def _check_scalar(claim: str, value: object) -> None:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"claim {claim!r}: the expected value must not be empty")
    elif not isinstance(value, bool | int):
        raise ValueError(
            f"claim {claim!r}: expected a string, a bool, an integer or a list of them, "
            f"got {type(value).__name__}"
        )


def _check_match(value: object) -> object:
    """Precise messages for the claim conditions (a plain union would report every branch)."""
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of claim names to expected values")
    if not value:
        raise ValueError(
            "a rule must match at least one claim (e.g. project_path); an empty match "
            "would admit every token the issuer signs, whoever it was issued to"
        )
    for claim, expected in value.items():
        if not isinstance(claim, str) or not claim.strip():
            raise ValueError("claim names must be non-empty strings")
        if isinstance(expected, list):
            if not expected:
                raise ValueError(f"claim {claim!r}: an empty list would never match")
            for item in expected:
                _check_scalar(claim, item)
        else:
            _check_scalar(claim, expected)
    return value


def _check_audience(value: str | list[str]) -> str | list[str]:
    items = [value] if isinstance(value, str) else value
    if not items:
        raise ValueError("at least one audience is required")
    if any(not item.strip() for item in items):
        raise ValueError("an audience must not be empty or blank")
    return value


class OIDCRule(Strict):
    """Tokens whose claims match ``match`` act as ``app`` (or team/tenant) with ``role``."""

    match: Annotated[dict[str, ClaimPattern], BeforeValidator(_check_match)] = Field(
        description=(
            "Claim name -> expected value. Every listed claim must match: an exact string, a "
            "glob with * (e.g. 'release/*'), a bool (also matches the strings 'true'/'false' "
            "that GitLab sends), or a list of which any may match."
        )
    )
    tenant: Name = Field(description="The tenant (by name) the caller acts in.")
    team: Name | None = Field(None, description="Optional team (by name) inside the tenant.")
    app: Name | None = Field(
        None, description="Optional app (by name) the caller acts as; subscriptions are per app."
    )
    role: RoleName = Field("consumer", description="The caller's role.")
    models: Annotated[list[NonBlank], Field(min_length=1)] | None = Field(
        None, description="Optional allow-list of models (names or globs) narrowing access."
    )

    @field_validator("role")
    @classmethod
    def _not_platform_admin(cls, value: RoleName) -> RoleName:
        if value == "platform_admin":
            raise ValueError(
                "an OIDC rule cannot grant platform_admin: OIDC callers act inside one tenant"
            )
        return value


class OIDCIssuerConfig(Strict):
    """One trusted token issuer and the rules that admit its tokens."""

    name: Name = Field(description="A short name for messages and logs, e.g. gitlab.")
    issuer: Annotated[str, AfterValidator(_check_issuer)] = Field(
        description="Must equal the token's `iss` claim exactly (no trailing-slash leniency)."
    )
    jwks_url: Annotated[str, AfterValidator(_check_jwks_url)] = Field(
        description="Where the issuer publishes its signing keys (JWKS)."
    )
    audience: Annotated[str | list[str], AfterValidator(_check_audience)] = Field(
        description="The `aud` value(s) accepted; the token's audience must contain one of them."
    )
    algorithms: Annotated[list[Algorithm], Field(min_length=1)] = Field(
        default_factory=lambda: ["RS256"],
        description="Signing algorithms accepted (asymmetric only; never none or HS*).",
    )
    leeway_seconds: int = Field(
        30, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat."
    )
    jwks_cache_seconds: int = Field(
        300, ge=1, le=86_400, description="How long fetched keys are used before a refetch."
    )
    jwks_min_refresh_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        description=(
            "Least time between two fetches forced by an unknown key id, so that tokens with "
            "random key ids cannot make the gateway hammer the issuer."
        ),
    )
    subject_claim: NonBlank = Field("sub", description="The claim naming the caller in logs.")
    rules: list[OIDCRule] = Field(
        description="Tried in order; the first whose match fits admits the token. None: 403."
    )

    @field_validator("algorithms")
    @classmethod
    def _unique_algorithms(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("algorithms are listed more than once")
        return value

    @field_validator("rules")
    @classmethod
    def _some_rules(cls, value: list[OIDCRule]) -> list[OIDCRule]:
        if not value:
            raise ValueError(
                "at least one rule is required: tokens that no rule admits are refused, so an "
                "issuer without rules would admit nobody"
            )
        return value

    @property
    def audiences(self) -> list[str]:
        """The audience as a list, whichever form the config used."""
        return [self.audience] if isinstance(self.audience, str) else list(self.audience)


class AuthConfig(Strict):
    """How callers authenticate."""

    mode: AuthMode = Field(
        "keys",
        description=(
            "keys: every call needs a gateway key or a trusted JWT; open: anonymous calls are "
            "allowed (local demos only)."
        ),
    )
    oidc: list[OIDCIssuerConfig] = Field(
        default_factory=list, description="Issuers whose JWTs are accepted as credentials."
    )
    refresh_seconds: float = Field(
        0.5,
        gt=0,
        le=10,
        description=(
            "How often each worker checks the records for changed keys, tenants or "
            "subscriptions (one tiny query); a revoked key stops working within about this long."
        ),
    )

    @model_validator(mode="after")
    def _unique_issuers(self) -> AuthConfig:
        names: set[str] = set()
        issuers: set[str] = set()
        for index, entry in enumerate(self.oidc):
            if entry.name in names:
                raise ValueError(f"oidc[{index}].name: duplicate issuer name {entry.name!r}")
            if entry.issuer in issuers:
                raise ValueError(
                    f"oidc[{index}].issuer: issuer {entry.issuer!r} is configured twice; "
                    "merge the two entries' rules into one"
                )
            names.add(entry.name)
            issuers.add(entry.issuer)
        return self
