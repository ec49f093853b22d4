"""OIDC tokens verified against a real issuer's JWKS over loopback HTTP (``FakeOIDCIssuer``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gatewise.config.auth import AuthConfig
from gatewise.core.errors import AuthenticationError, PermissionDeniedError
from gatewise.identity.jwks import JWKSCache
from gatewise.identity.oidc import OIDCIdentity, OIDCVerifier
from gatewise.identity.roles import Role
from gatewise.net.http1 import HTTPClient
from gatewise.testing import run_in_thread
from gatewise.testing.oidc import FakeOIDCIssuer

PRODUCTION = {
    "match": {
        "project_path": "group/project",
        "ref_protected": True,
        "ref": ["main", "release/*"],
    },
    "tenant": "acme",
    "team": "ml",
    "app": "deployer",
    "role": "developer",
    "models": ["prod-*"],
}
SANDBOX = {"match": {"namespace_path": "sandbox"}, "tenant": "playground"}
RULES: list[dict[str, Any]] = [PRODUCTION, SANDBOX]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOIDCIssuer]:
    async with FakeOIDCIssuer() as issuer:
        yield issuer


def make_verifier(fake: FakeOIDCIssuer, **overrides: Any) -> OIDCVerifier:
    config = AuthConfig.model_validate({"oidc": [fake.config(RULES, **overrides)]})
    return OIDCVerifier(config.oidc, fetch_timeout=2.0)


@pytest.fixture
async def verifier(fake: FakeOIDCIssuer) -> AsyncIterator[OIDCVerifier]:
    v = make_verifier(fake)
    await v.start()
    yield v
    await v.close()


async def refused(verifier: OIDCVerifier, token: str) -> str:
    """The 401 message for ``token`` (which must not be echoed in it)."""
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(token.encode())
    assert caught.value.status == 401
    assert token not in caught.value.message and token.split(".")[1] not in caught.value.message
    return caught.value.message


async def test_gitlab_token_maps_to_the_rules_identity(
    fake: FakeOIDCIssuer, verifier: OIDCVerifier
) -> None:
    claims = fake.gitlab_claims()
    token = fake.mint(claims)
    assert verifier.looks_like_jwt(token.encode())
    identity = await verifier.verify(token.encode())
    assert identity == OIDCIdentity(
        issuer_name="fake",
        subject="project_path:group/project:ref_type:branch:ref:main",
        tenant="acme",
        team="ml",
        app="deployer",
        role=Role.DEVELOPER,
        models=["prod-*"],
        expires_at=float(claims["exp"]),
        claims=claims,
    )
    sandbox = await verifier.verify(
        fake.mint(fake.gitlab_claims(project_path="sandbox/tool", ref="feature/x")).encode()
    )
    assert (sandbox.tenant, sandbox.team, sandbox.app, sandbox.role) == (
        "playground",
        None,
        None,
        Role.CONSUMER,
    )
    assert fake.jwks_requests == 1


async def test_ec_tokens_and_release_globs(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    token = fake.mint(fake.gitlab_claims(ref="release/2.1"), alg="ES256")
    assert (await verifier.verify(token.encode())).tenant == "acme"


async def test_verified_tokens_are_served_from_the_cache(
    fake: FakeOIDCIssuer, verifier: OIDCVerifier
) -> None:
    token = fake.mint(fake.gitlab_claims()).encode()
    first = await verifier.verify(token)
    await fake.close()  # the issuer is gone: only the cache can answer
    assert await verifier.verify(token) is first


async def test_wrong_issuer(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    token = fake.mint(fake.gitlab_claims(iss="https://gitlab.other.example"))
    assert await refused(verifier, token) == "the token's issuer is not trusted by this gateway"
    assert fake.jwks_requests <= 1  # only the start-up prefetch


async def test_wrong_audience(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    token = fake.mint(fake.gitlab_claims(aud="https://another-service.example"))
    assert await refused(verifier, token) == "the token's audience is not accepted"
    no_aud = fake.mint(fake.gitlab_claims(aud=None))
    assert await refused(verifier, no_aud) == "the token has no 'aud' claim"


async def test_alg_none_is_refused(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    message = await refused(verifier, fake.mint_unsigned(fake.gitlab_claims()))
    assert message == "the token's signing algorithm is not accepted for issuer 'fake'"


async def test_hs256_signed_with_the_public_key_is_refused(
    fake: FakeOIDCIssuer, verifier: OIDCVerifier
) -> None:
    message = await refused(verifier, fake.mint_hs256_with_public_key(fake.gitlab_claims()))
    assert message == "the token's signing algorithm is not accepted for issuer 'fake'"


async def test_an_rsa_key_never_verifies_an_ec_alg(
    fake: FakeOIDCIssuer, verifier: OIDCVerifier
) -> None:
    # Signed with the EC key but naming the RSA key's kid: no key of the right type.
    token = fake.mint(fake.gitlab_claims(), alg="ES256", kid=fake.rsa_kid)
    assert "does not publish" in await refused(verifier, token)


async def test_expiry_with_leeway(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    now = int(time.time())
    expired = fake.mint(fake.gitlab_claims(exp=now - 120, iat=now - 600, nbf=now - 600))
    assert await refused(verifier, expired) == "the token has expired"
    within_leeway = fake.mint(fake.gitlab_claims(exp=now - 5, iat=now - 600, nbf=now - 600))
    assert (await verifier.verify(within_leeway.encode())).tenant == "acme"
    no_exp = fake.mint(fake.gitlab_claims(exp=None))
    assert await refused(verifier, no_exp) == "the token has no 'exp' claim"


async def test_not_before_in_the_future(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    now = int(time.time())
    token = fake.mint(fake.gitlab_claims(nbf=now + 120))
    assert await refused(verifier, token) == (
        "the token is not valid yet (nbf or iat is in the future)"
    )


async def test_tampered_payload(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    token = fake.mint(fake.gitlab_claims(project_path="sandbox/tool"))
    forged = fake.tamper(token, project_path="group/project", namespace_path="group")
    assert await refused(verifier, forged) == "the token's signature is not valid"


async def test_key_not_in_the_jwks(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    await verifier.verify(fake.mint(fake.gitlab_claims()).encode())
    before = fake.jwks_requests
    token = fake.mint(fake.gitlab_claims(), key_id=fake.unpublished_kid)
    message = await refused(verifier, token)
    assert message == "the token was signed with a key that issuer 'fake' does not publish"
    assert fake.jwks_requests == before + 1  # one forced refresh looked for the new kid


async def test_unknown_kids_cannot_hammer_the_issuer(fake: FakeOIDCIssuer) -> None:
    verifier = make_verifier(fake, jwks_min_refresh_seconds=60)
    try:
        await verifier.verify(fake.mint(fake.gitlab_claims()).encode())
        for n in range(5):
            token = fake.mint(fake.gitlab_claims(), kid=f"random-{n}")
            assert "does not publish" in await refused(verifier, token)
        assert fake.jwks_requests == 1  # the last fetch is too recent to force another
    finally:
        await verifier.close()


async def test_no_rule_matches_is_403(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    token = fake.mint(fake.gitlab_claims(project_path="other/project"))
    with pytest.raises(PermissionDeniedError) as caught:
        await verifier.verify(token.encode())
    assert caught.value.status == 403
    assert caught.value.message == "no auth.oidc rule of issuer 'fake' admits this token"


async def test_unprotected_branch_does_not_match_the_production_rule(
    fake: FakeOIDCIssuer, verifier: OIDCVerifier
) -> None:
    token = fake.mint(fake.gitlab_claims(ref_protected="false"))
    with pytest.raises(PermissionDeniedError):
        await verifier.verify(token.encode())
    feature = fake.mint(fake.gitlab_claims(ref="feature/x"))
    with pytest.raises(PermissionDeniedError):
        await verifier.verify(feature.encode())


async def test_key_rotation_is_picked_up(fake: FakeOIDCIssuer, verifier: OIDCVerifier) -> None:
    old_kid = fake.rsa_kid
    assert (await verifier.verify(fake.mint(fake.gitlab_claims()).encode())).tenant == "acme"
    new_kid = fake.rotate("rsa")
    assert new_kid != old_kid
    rotated = fake.mint(fake.gitlab_claims())
    assert (await verifier.verify(rotated.encode())).tenant == "acme"
    assert fake.jwks_requests == 2
    # The withdrawn key is gone from our copy too.
    stale = fake.mint(fake.gitlab_claims(), key_id=old_kid)
    assert "does not publish" in await refused(verifier, stale)


async def test_issuer_down_with_cached_keys_still_verifies(
    fake: FakeOIDCIssuer, verifier: OIDCVerifier
) -> None:
    await verifier.verify(fake.mint(fake.gitlab_claims()).encode())
    fake.available = False
    jwks = verifier.jwks("fake")
    await jwks.refresh()  # fails (connection reset): the keys we had are kept
    assert jwks.fetch_count == 2 and jwks.has_keys
    fake.jwks_status = 503
    fake.available = True
    await jwks.refresh()
    assert jwks.fetch_count == 3 and jwks.has_keys
    fresh = fake.mint(fake.gitlab_claims(ref="release/9"))
    assert (await verifier.verify(fresh.encode())).tenant == "acme"


@pytest.mark.parametrize("failure", ["reset", "503", "closed"])
async def test_issuer_down_without_keys_fails_closed(fake: FakeOIDCIssuer, failure: str) -> None:
    token = fake.mint(fake.gitlab_claims())
    if failure == "reset":
        fake.available = False
    elif failure == "503":
        fake.jwks_status = 503
    else:
        await fake.close()
    verifier = make_verifier(fake)
    try:
        assert await refused(verifier, token) == "cannot verify tokens of issuer 'fake' right now"
        assert not verifier.jwks("fake").has_keys
    finally:
        await verifier.close()


async def test_concurrent_verifications_share_one_fetch(fake: FakeOIDCIssuer) -> None:
    verifier = make_verifier(fake)
    try:
        tokens = [fake.mint(fake.gitlab_claims(jti=f"t{n}")).encode() for n in range(20)]
        identities = await asyncio.gather(*(verifier.verify(token) for token in tokens))
        assert {identity.tenant for identity in identities} == {"acme"}
        assert fake.jwks_requests == 1
        assert verifier.jwks("fake").fetch_count == 1
    finally:
        await verifier.close()


def test_fake_issuer_runs_in_a_thread_for_sync_tests() -> None:
    with run_in_thread(FakeOIDCIssuer()) as fake:
        config = AuthConfig.model_validate({"oidc": [fake.config(RULES)]})

        async def verify() -> OIDCIdentity:
            verifier = OIDCVerifier(config.oidc)
            try:
                return await verifier.verify(fake.mint(fake.gitlab_claims()).encode())
            finally:
                await verifier.close()

        assert asyncio.run(verify()).tenant == "acme"
        assert fake.jwks_requests == 1


async def test_stale_keys_serve_while_a_background_refetch_runs(fake: FakeOIDCIssuer) -> None:
    clock = [100.0]
    client = HTTPClient()
    jwks = JWKSCache(
        fake.jwks_url,
        client=client,
        cache_seconds=300,
        min_refresh_seconds=10,
        clock=lambda: clock[0],
    )
    try:
        assert len(await jwks.keys_for(fake.rsa_kid, "RS256")) == 1
        clock[0] += 299
        await jwks.keys_for(fake.rsa_kid, "RS256")
        assert jwks.fetch_count == 1  # still fresh
        old_kid = fake.rsa_kid
        fake.rotate("rsa", drop_old=True)
        clock[0] += 1
        # Stale: the old key still answers at once while the refetch runs behind it.
        old = await jwks.keys_for(None, "RS256")
        assert [key.key_id for key in old] == [old_kid]
        assert fake.jwks_requests == 1
        await jwks.refresh()  # joins the background fetch
        assert jwks.fetch_count == 2 and fake.jwks_requests == 2
        assert [key.key_id for key in await jwks.keys_for(None, "RS256")] == [fake.rsa_kid]
        assert await jwks.keys_for(None, "ES256")  # the EC key is still published
    finally:
        await jwks.close()
        await client.close()
