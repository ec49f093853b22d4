"""HTTP proxies for upstream calls: CONNECT tunnels, as corporate egress proxies require.

A provider either names its proxy (``proxy: http://proxy:3128``; credentials
as ``${env:...}`` references in the URL) or, with ``trust_env: true``, takes
``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` from the environment. Every
upstream connection then goes through a CONNECT tunnel (TLS to the upstream
runs inside it, end to end), so the proxy never sees requests or keys.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    #: ``Proxy-Authorization`` value when the proxy URL carries credentials.
    authorization: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(f"unsupported proxy scheme {parts.scheme!r}: use an http:// proxy")
        if not parts.hostname:
            raise ValueError("the proxy URL has no host")
        authorization = None
        if parts.username is not None:
            user = unquote(parts.username)
            password = unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            authorization = f"Basic {token}"
        return cls(parts.hostname, parts.port or 80, authorization)

    def connect_head(self, host: str, port: int) -> bytes:
        """The CONNECT request that opens a tunnel to ``host:port``."""
        target = f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"host: {target}"]
        if self.authorization:
            lines.append(f"proxy-authorization: {self.authorization}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


ProxyResolver = Callable[[str, str], "Proxy | None"]
"""(scheme, host) -> the proxy to use for that upstream, or None to connect directly."""


def resolver(proxy_url: str | None, trust_env: bool) -> ProxyResolver | None:
    """How a provider's connections find their proxy (None: always direct)."""
    if proxy_url:
        fixed = Proxy.from_url(proxy_url)
        return lambda scheme, host: fixed
    if not trust_env:
        return None
    environment = urllib.request.getproxies()

    def from_environment(scheme: str, host: str) -> Proxy | None:
        url = environment.get(scheme) or environment.get("https" if scheme == "http" else "http")
        if not url or urllib.request.proxy_bypass(host):
            return None
        return Proxy.from_url(url)

    return from_environment
