"""The lifecycle every test server shares: listen on loopback, report its URL, stop.

Fake upstreams, the fake OIDC issuer and the webhook receiver differ only in
how they answer (``handle``); starting, stopping, ``async with`` and the URL
live here once.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from gatewise.testing.httpserver import HttpServer, Request, Response


class LoopbackServer:
    #: Named in the error raised when the URL is asked for before ``start``.
    server_name = "the test server"

    def __init__(self) -> None:
        self._server: HttpServer | None = None
        self._url: str | None = None

    async def handle(self, request: Request, response: Response) -> None:
        """Answer one request (subclasses)."""
        raise NotImplementedError

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False
    ) -> str:
        """Listen (port 0 picks a free port); return the root URL ``http://HOST:PORT``."""
        server = HttpServer(self.handle)
        bound_host, bound_port = await server.start(host, port, reuse_port=reuse_port)
        self._server = server
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._url = f"http://{shown}:{bound_port}"
        return self._url

    async def close(self) -> None:
        """Stop listening and reset open connections (hanging requests end too)."""
        server, self._server = self._server, None
        if server is not None:
            await server.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (RuntimeError before ``start``)."""
        if self._url is None:
            raise RuntimeError(f"{self.server_name} is not started")
        return self._url
