"""Fetching and caching one issuer's signing keys (its JWKS).

Why a cache with these rules: verifying a token needs the issuer's public key,
and the issuer must neither sit on the request path nor be hammered. Keys are
refetched every ``cache_seconds`` in the background while the old ones keep
serving. A token with an unknown ``kid`` (the issuer rotated its keys) forces
one refetch, at most once per ``min_refresh_seconds``, so tokens with random
key ids cannot turn the gateway into a flood against the issuer. Concurrent
callers that need a fetch share one. A failed fetch keeps the keys we had;
with no keys at all the caller is told so and must refuse the token (fail
closed). Only asymmetric signing keys are kept: a symmetric (``oct``) key in
a JWKS is ignored, and a key serves an algorithm only if its type fits it
(RSA for RS*/PS*, EC on the matching curve for ES*, OKP for EdDSA).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from gatewise.net.http1 import ClientError, HTTPClient, Origin

__all__ = ["FETCH_TIMEOUT", "JWKSCache", "JWKSUnavailableError", "key_fits"]

log = logging.getLogger("gatewise.identity")

FETCH_TIMEOUT = 5.0
_MAX_BODY = 1 << 20  # a JWKS is a few KiB; refuse anything absurd
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})


class JWKSUnavailableError(Exception):
    """No keys of this issuer are known (the fetch failed or is rate-limited)."""


class _FetchError(Exception):
    """Why one fetch failed (logged; never shown to callers)."""


def key_fits(jwk: Mapping[str, Any], alg: str) -> bool:
    """Whether a JWK may verify a signature made with ``alg``: type, curve, ``alg`` and ``use``."""
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        return False
    use = jwk.get("use")
    if use is not None and use != "sig":
        return False
    kty = jwk.get("kty")
    if alg[:2] in ("RS", "PS"):
        return kty == "RSA"
    if alg in _EC_CURVES:
        return kty == "EC" and jwk.get("crv") == _EC_CURVES[alg]
    if alg == "EdDSA":
        return kty == "OKP" and jwk.get("crv") in _OKP_CURVES
    return False


def _usable(jwk: Any) -> bool:
    """A well-formed asymmetric public key (PyJWT can load it)."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC", "OKP"):
        return False
    if "d" in jwk:  # a private key published by mistake: refuse to touch it
        return False
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        return False
    try:
        PyJWK(jwk)
    except (PyJWKError, ValueError, TypeError, KeyError):
        return False
    return True


class JWKSCache:
    """The keys of one issuer, fetched from ``url`` with the project's HTTP client."""

    def __init__(
        self,
        url: str,
        *,
        client: HTTPClient,
        cache_seconds: float,
        min_refresh_seconds: float,
        timeout: float = FETCH_TIMEOUT,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.name = name or url
        self._client = client
        self._origin = Origin(url)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._head = (
            f"GET {target} HTTP/1.1\r\nhost: {self._origin.host_header}\r\n"
            "accept: application/json\r\nuser-agent: gatewise\r\ncontent-length: 0\r\n\r\n"
        ).encode("latin-1")
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._timeout = timeout
        self._clock = clock
        self._keys: list[dict[str, Any]] | None = None
        self._loaded: dict[tuple[int, str], PyJWK] = {}
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        #: Fetches attempted so far (tests and metrics).
        self.fetch_count = 0

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    async def keys_for(self, kid: str | None, alg: str) -> list[PyJWK]:
        """The keys that may verify a token with this ``kid`` and ``alg`` (maybe none).

        Raises ``JWKSUnavailableError`` when no keys of the issuer are known at all.
        """
        now = self._clock()
        if self._keys is None:
            if self._inflight is None and not self._may_fetch(now):
                raise JWKSUnavailableError(self.name)
            await self.refresh()
            if self._keys is None:
                raise JWKSUnavailableError(self.name)
        elif now - self._fetched_at >= self._cache_seconds and self._may_fetch(now):
            self._start_fetch()  # stale: refetch in the background, serve what we have
        found = self._find(kid, alg)
        if found or kid is None:
            return found
        if self._inflight is not None or self._may_fetch(now):
            await self.refresh()  # an unknown kid: the issuer may have rotated its keys
            found = self._find(kid, alg)
        return found

    async def refresh(self) -> None:
        """Fetch now, or join the fetch already running; never raises for a failed fetch."""
        task = self._start_fetch()
        await asyncio.shield(task)

    def prefetch(self) -> None:
        """Start a fetch in the background (at start-up) unless one is running."""
        self._start_fetch()

    async def close(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- internals -------------------------------------------------------------
    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._min_refresh

    def _start_fetch(self) -> asyncio.Task[None]:
        task = self._inflight
        if task is None:
            task = self._inflight = asyncio.ensure_future(self._fetch_and_store())
        return task

    def _find(self, kid: str | None, alg: str) -> list[PyJWK]:
        found: list[PyJWK] = []
        for index, jwk in enumerate(self._keys or ()):
            if kid is not None and jwk.get("kid") != kid:
                continue
            if not key_fits(jwk, alg):
                continue
            loaded = self._loaded.get((index, alg))
            if loaded is None:
                try:
                    loaded = self._loaded[(index, alg)] = PyJWK(jwk, algorithm=alg)
                except (PyJWKError, ValueError, TypeError, KeyError):
                    continue
            found.append(loaded)
        return found

    async def _fetch_and_store(self) -> None:
        self._attempted_at = self._clock()
        self.fetch_count += 1
        try:
            keys = await self._fetch()
        except (_FetchError, ClientError, OSError, TimeoutError) as exc:
            kept = "keeping the keys fetched before" if self._keys else "no keys are known"
            log.warning("fetching the JWKS of issuer %r failed (%s); %s", self.name, exc, kept)
        else:
            self._keys = keys
            self._loaded = {}
            self._fetched_at = self._clock()
        finally:
            self._inflight = None

    async def _fetch(self) -> list[dict[str, Any]]:
        timeout = self._timeout
        async with asyncio.timeout(timeout):
            response = await self._client.request(
                self._origin,
                self._head,
                b"",
                first_byte_timeout=timeout,
                idle_timeout=timeout,
                total_timeout=timeout,
            )
            if response.status != 200:
                response.close()
                raise _FetchError(f"HTTP {response.status} from {self.url}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.iter_chunks():
                size += len(chunk)
                if size > _MAX_BODY:
                    response.close()
                    raise _FetchError(f"the JWKS at {self.url} is larger than {_MAX_BODY} bytes")
                chunks.append(chunk)
        try:
            document = orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError:
            raise _FetchError(f"the JWKS at {self.url} is not JSON") from None
        raw = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(raw, list):
            raise _FetchError(f"the JWKS at {self.url} has no 'keys' list")
        keys = [jwk for jwk in raw if _usable(jwk)]
        if not keys:
            raise _FetchError(f"the JWKS at {self.url} holds no usable public signing key")
        if len(keys) < len(raw):
            log.info("issuer %r: ignored %d unusable JWKS entries", self.name, len(raw) - len(keys))
        return keys
