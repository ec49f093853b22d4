"""``FakeOIDCIssuer``: a loopback OIDC issuer that publishes a JWKS and mints tokens.

Why: the gateway's OIDC support must be tested against real HTTP fetches of
real keys, including the attacks it has to refuse. The fake generates an RSA
2048 and an EC P-256 signing key, serves them at ``/oauth/discovery/keys``
(GitLab's path) plus a discovery document, and mints tokens with any claims
and headers -- including deliberately bad ones: ``alg: none``, HS256 signed
with the public key's PEM (the classic algorithm-confusion attack), a key the
JWKS does not publish, expired or not-yet-valid tokens, tampered payloads.
It can rotate keys and go down. Run it in the test's loop (``async with``)
or in a thread for sync tests (``run_in_thread``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from collections.abc import Mapping
from typing import Any, Literal

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gatewise.testing.httpserver import Request, Response
from gatewise.testing.loopback import LoopbackServer

__all__ = ["DEFAULT_AUDIENCE", "FakeOIDCIssuer", "b64url"]

DEFAULT_AUDIENCE = "https://gateway.test"
JWKS_PATH = "/oauth/discovery/keys"
KeyKind = Literal["rsa", "ec"]
_JSON = [("content-type", "application/json")]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_part(value: Mapping[str, Any]) -> str:
    return b64url(orjson.dumps(dict(value)))


def _new_key(kind: KeyKind) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _public_jwk(key: PrivateKey, kid: str) -> dict[str, Any]:
    """The key as a JWK; like GitLab's, without ``alg`` (one RSA key may serve RS* and PS*)."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=kid, use="sig")
    return dict(jwk)


class FakeOIDCIssuer(LoopbackServer):
    """A token issuer on loopback HTTP; ``issuer`` defaults to its own URL."""

    server_name = "the fake issuer"

    def __init__(self, *, audience: str = DEFAULT_AUDIENCE, issuer: str | None = None) -> None:
        super().__init__()
        self.audience = audience
        self._issuer = issuer
        self._counter = itertools.count(1)
        self._keys: dict[str, PrivateKey] = {}
        self._published: list[str] = []
        self.rsa_kid = self.add_key("rsa")
        self.ec_kid = self.add_key("ec")
        #: A key that signs but is never published (for "unknown key" tokens).
        self.unpublished_kid = self.add_key("rsa", publish=False)
        self.available = True  # False: reset JWKS connections (issuer down)
        self.jwks_status = 200
        self.jwks_requests = 0

    @property
    def url(self) -> str:
        return self.root_url

    @property
    def issuer(self) -> str:
        """The ``iss`` of minted tokens (and what the gateway's config must name)."""
        return self._issuer or self.url

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    def config(self, rules: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
        """An ``auth.oidc`` entry (as a dict) trusting this issuer."""
        entry: dict[str, Any] = {
            "name": "fake",
            "issuer": self.issuer,
            "jwks_url": self.jwks_url,
            "audience": self.audience,
            "algorithms": ["RS256", "ES256"],
            "jwks_min_refresh_seconds": 0,
            "rules": rules,
        }
        entry.update(overrides)
        return entry

    # -- keys ------------------------------------------------------------------
    def add_key(self, kind: KeyKind = "rsa", *, publish: bool = True) -> str:
        """Generate a key; return its kid. Published keys appear in the JWKS."""
        kid = f"{kind}-{next(self._counter)}"
        self._keys[kid] = _new_key(kind)
        if publish:
            self._published = [*self._published, kid]
        return kid

    def rotate(self, kind: KeyKind = "rsa", *, drop_old: bool = True) -> str:
        """Publish a new key of ``kind`` (and by default withdraw the old ones of that kind)."""
        kid = self.add_key(kind, publish=False)
        kept = [k for k in self._published if not (drop_old and k.startswith(f"{kind}-"))]
        self._published = [*kept, kid]
        if kind == "rsa":
            self.rsa_kid = kid
        else:
            self.ec_kid = kid
        return kid

    def public_pem(self, kid: str | None = None) -> bytes:
        key = self._keys[kid or self.rsa_kid]
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_public_jwk(self._keys[kid], kid) for kid in self._published]}

    # -- tokens ----------------------------------------------------------------
    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Standard claims for a fresh token; ``None`` values remove a claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "user:1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": f"jti-{next(self._counter)}",
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def gitlab_claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims like a GitLab CI ``id_tokens`` token (bools as the strings GitLab sends)."""
        project = overrides.pop("project_path", "group/project")
        ref = overrides.pop("ref", "main")
        base: dict[str, Any] = {
            "sub": f"project_path:{project}:ref_type:branch:ref:{ref}",
            "namespace_id": "7",
            "namespace_path": project.rsplit("/", 1)[0],
            "project_id": "42",
            "project_path": project,
            "user_id": "3",
            "user_login": "alice",
            "user_email": "alice@example.com",
            "pipeline_id": "1001",
            "pipeline_source": "push",
            "job_id": "5001",
            "ref": ref,
            "ref_type": "branch",
            "ref_path": f"refs/heads/{ref}",
            "ref_protected": "true",
            "runner_id": 1,
            "runner_environment": "gitlab-hosted",
        }
        base.update(overrides)
        return self.claims(**base)

    def mint(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        alg: str = "RS256",
        kid: str | None = None,
        key_id: str | None = None,
        headers: Mapping[str, Any] | None = None,
        with_kid: bool = True,
    ) -> str:
        """A signed token. ``key_id`` picks the signing key (default: the current key of the
        alg's family); ``kid`` overrides the header's kid; ``with_kid=False`` omits it."""
        payload = dict(claims if claims is not None else self.claims())
        signer = key_id or (self.ec_kid if alg.startswith("ES") else self.rsa_kid)
        header: dict[str, Any] = {"typ": "JWT"}
        if with_kid:
            header["kid"] = kid or signer
        header.update(headers or {})
        return jwt.encode(payload, self._keys[signer], algorithm=alg, headers=header)

    def mint_unsigned(self, claims: Mapping[str, Any] | None = None) -> str:
        """``alg: none`` with an empty signature."""
        header = {"alg": "none", "typ": "JWT", "kid": self.rsa_kid}
        return f"{_json_part(header)}.{_json_part(claims or self.claims())}."

    def mint_hs256_with_public_key(self, claims: Mapping[str, Any] | None = None) -> str:
        """HS256 keyed with the RSA public key's PEM: what a verifier confusing algorithms
        would accept, since anyone can download that PEM."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self.rsa_kid}
        signing_input = f"{_json_part(header)}.{_json_part(claims or self.claims())}"
        mac = hmac.new(self.public_pem(), signing_input.encode("ascii"), hashlib.sha256)
        return f"{signing_input}.{b64url(mac.digest())}"

    @staticmethod
    def tamper(token: str, **changes: Any) -> str:
        """The token with claims changed but the original signature kept."""
        header, payload, signature = token.split(".")
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims.update(changes)
        return f"{header}.{_json_part(claims)}.{signature}"

    # -- HTTP ------------------------------------------------------------------
    async def handle(self, request: Request, response: Response) -> None:
        if request.path == JWKS_PATH:
            self.jwks_requests += 1
            if not self.available:
                response.abort()
                return
            if self.jwks_status != 200:
                response.send(self.jwks_status, _JSON, b'{"error":"unavailable"}')
                return
            response.send(200, _JSON, orjson.dumps(self.jwks()))
        elif request.path == "/.well-known/openid-configuration":
            document = {"issuer": self.issuer, "jwks_uri": self.jwks_url}
            response.send(200, _JSON, orjson.dumps(document))
        else:
            response.send(404, _JSON, b'{"error":"not_found"}')
