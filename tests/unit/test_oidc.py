"""OIDC callers without the network: rule matching, the verified-token cache, early rejections."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gatewise.config.auth import AuthConfig, OIDCRule
from gatewise.core.errors import AuthenticationError
from gatewise.identity.jwks import key_fits
from gatewise.identity.oidc import CACHE_SECONDS, OIDCIdentity, OIDCVerifier, TokenCache
from gatewise.identity.oidc import rule_matches as matches
from gatewise.identity.roles import Role

ISSUER = "https://gitlab.example.com"


def rule(**match: Any) -> OIDCRule:
    return OIDCRule.model_validate({"match": match, "tenant": "acme"})


def identity(expires_at: float, tenant: str = "acme") -> OIDCIdentity:
    return OIDCIdentity(
        issuer_name="gitlab",
        subject="user:1",
        tenant=tenant,
        team=None,
        app=None,
        role=Role.CONSUMER,
        models=None,
        expires_at=expires_at,
        claims={},
    )


# -- rule matching --------------------------------------------------------------------


def test_exact_strings() -> None:
    assert matches(rule(project_path="group/project"), {"project_path": "group/project"})
    assert not matches(rule(project_path="group/project"), {"project_path": "group/project2"})
    assert not matches(rule(project_path="group/project"), {"project_path": "Group/Project"})


def test_globs_use_star_and_are_case_sensitive() -> None:
    release = rule(ref="release/*")
    assert matches(release, {"ref": "release/1.2"})
    assert not matches(release, {"ref": "main"})
    assert not matches(release, {"ref": "Release/1.2"})
    assert not matches(release, {"ref": "hotfix/release/1"})
    # `*` also crosses `/`: a namespace glob admits sub-groups too.
    assert matches(rule(project_path="group/*"), {"project_path": "group/sub/project"})


def test_a_list_matches_any_of_its_values() -> None:
    refs = rule(ref=["main", "release/*"])
    assert matches(refs, {"ref": "main"})
    assert matches(refs, {"ref": "release/2"})
    assert not matches(refs, {"ref": "feature/x"})


def test_bools_match_json_bools_and_gitlab_strings() -> None:
    protected = rule(ref_protected=True)
    assert matches(protected, {"ref_protected": True})
    assert matches(protected, {"ref_protected": "true"})
    assert not matches(protected, {"ref_protected": "false"})
    assert not matches(protected, {"ref_protected": False})
    assert not matches(protected, {"ref_protected": "True"})
    assert not matches(protected, {"ref_protected": 1})
    assert matches(rule(ref_protected=False), {"ref_protected": "false"})
    # Written as the string GitLab sends, it matches a JSON bool too.
    assert matches(rule(ref_protected="true"), {"ref_protected": True})


def test_integers_match_numeric_strings() -> None:
    assert matches(rule(project_id=42), {"project_id": "42"})
    assert matches(rule(project_id=42), {"project_id": 42})
    assert not matches(rule(project_id=42), {"project_id": "420"})


def test_every_listed_claim_must_match_and_be_present() -> None:
    both = rule(project_path="group/project", ref_protected=True)
    assert matches(both, {"project_path": "group/project", "ref_protected": "true", "x": 1})
    assert not matches(both, {"project_path": "group/project", "ref_protected": "false"})
    assert not matches(both, {"project_path": "group/project"})


def test_list_claims_match_when_any_element_matches() -> None:
    admins = rule(groups="ml-*")
    assert matches(admins, {"groups": ["ops", "ml-admins"]})
    assert not matches(admins, {"groups": ["ops"]})
    assert not matches(admins, {"groups": {"ml-admins": True}})
    assert not matches(rule(groups="x"), {"groups": None})


# -- the token cache ---------------------------------------------------------------------


def test_cache_keeps_until_exp() -> None:
    cache = TokenCache()
    cache.put(b"a", identity(expires_at=1000.0), now=900.0)
    assert cache.get(b"a", 999.0) is not None
    assert cache.get(b"a", 1000.0) is None
    assert len(cache) == 0  # expired entries are dropped when seen


def test_cache_trusts_at_most_five_minutes() -> None:
    cache = TokenCache()
    cache.put(b"a", identity(expires_at=10_000.0), now=0.0)
    assert cache.get(b"a", CACHE_SECONDS - 1) is not None
    assert cache.get(b"a", CACHE_SECONDS) is None


def test_cache_ignores_expired_and_evicts_oldest() -> None:
    cache = TokenCache(limit=2)
    cache.put(b"old", identity(expires_at=5.0), now=10.0)
    assert len(cache) == 0
    cache.put(b"a", identity(100.0, "a"), now=0.0)
    cache.put(b"b", identity(100.0, "b"), now=0.0)
    cache.put(b"a", identity(100.0, "a2"), now=0.0)  # a refresh does not evict
    assert len(cache) == 2
    cache.put(b"c", identity(100.0, "c"), now=0.0)
    assert cache.get(b"a", 1.0) is None
    kept = [cache.get(key, 1.0) for key in (b"b", b"c")]
    assert [entry.tenant if entry else None for entry in kept] == ["b", "c"]


# -- the verifier's early rejections (no network) --------------------------------------------


def verifier(clock: list[float] | None = None) -> OIDCVerifier:
    config = AuthConfig.model_validate(
        {
            "oidc": [
                {
                    "name": "gitlab",
                    "issuer": ISSUER,
                    # Port 9 on loopback: never contacted by these tests.
                    "jwks_url": "http://127.0.0.1:9/keys",
                    "audience": "gw",
                    "rules": [{"match": {"sub": "*"}, "tenant": "acme"}],
                }
            ]
        }
    )
    now = clock if clock is not None else [time.time()]
    return OIDCVerifier(config.oidc, clock=lambda: now[0])


def test_looks_like_jwt() -> None:
    assert OIDCVerifier.looks_like_jwt(b"eyJhbGciOi.eyJzdWIiOi.c2ln")
    assert not OIDCVerifier.looks_like_jwt(b"gw-abc_secret")
    assert not OIDCVerifier.looks_like_jwt(b"eyJhbGciOi.eyJzdWIiOi")
    assert not OIDCVerifier.looks_like_jwt(b"eyJ.a.b.c")


def signed(claims: dict[str, Any], alg: str = "RS256") -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": "k"}).encode()


async def test_cached_identity_is_served_until_it_expires() -> None:
    clock = [1000.0]
    v = verifier(clock)
    token = b"eyJ.not-a-real.token"
    v.cache.put(hashlib.sha256(token).digest(), identity(1100.0), clock[0])
    assert (await v.verify(token)).tenant == "acme"
    clock[0] = 1100.0
    with pytest.raises(AuthenticationError) as caught:
        await v.verify(token)
    assert caught.value.status == 401
    await v.close()


@pytest.mark.parametrize(
    "token", [b"eyJ.x.y", b"not-a-jwt", b"eyJhbGciOiJSUzI1NiJ9..", b"\xff.\xfe.a"]
)
async def test_malformed_tokens(token: bytes) -> None:
    v = verifier()
    with pytest.raises(AuthenticationError) as caught:
        await v.verify(token)
    assert caught.value.message == "the bearer token is not a well-formed JWT"
    await v.close()


async def test_unknown_issuer_is_refused_without_fetching() -> None:
    v = verifier()
    token = signed({"iss": "https://evil.example.com", "aud": "gw", "exp": time.time() + 60})
    with pytest.raises(AuthenticationError) as caught:
        await v.verify(token)
    assert caught.value.message == "the token's issuer is not trusted by this gateway"
    assert token.decode() not in str(caught.value)
    assert v.jwks("gitlab").fetch_count == 0
    await v.close()


@pytest.mark.parametrize("alg", ["RS384", "PS256"])
async def test_algorithm_outside_the_issuers_list_is_refused(alg: str) -> None:
    v = verifier()
    token = signed({"iss": ISSUER, "aud": "gw", "exp": time.time() + 60}, alg=alg)
    with pytest.raises(AuthenticationError, match="signing algorithm is not accepted"):
        await v.verify(token)
    assert v.jwks("gitlab").fetch_count == 0
    await v.close()


def test_key_type_must_fit_the_algorithm() -> None:
    rsa_jwk = {"kty": "RSA", "n": "x", "e": "AQAB"}
    ec_jwk = {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}
    assert key_fits(rsa_jwk, "RS256") and key_fits(rsa_jwk, "PS512")
    assert not key_fits(rsa_jwk, "ES256") and not key_fits(rsa_jwk, "HS256")
    assert key_fits(ec_jwk, "ES256")
    assert not key_fits(ec_jwk, "ES384") and not key_fits(ec_jwk, "RS256")
    assert key_fits({"kty": "OKP", "crv": "Ed25519"}, "EdDSA")
    assert not key_fits({"kty": "oct", "k": "c2VjcmV0"}, "HS256")
    assert not key_fits({**rsa_jwk, "alg": "RS512"}, "RS256")
    assert not key_fits({**rsa_jwk, "use": "enc"}, "RS256")
