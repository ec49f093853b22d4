"""Active health checks: a one-token chat call to every deployment of the listed models,
every ``interval_s`` seconds, its outcome told to the deployment's breaker like live
traffic's. A deployment that failed while nobody called it is then skipped before a
caller meets it, and an open breaker closes on a check's success without a caller's
call being the probe. Checks cost a token each, so they are off unless configured, and
only for the models listed (a chat call to an embeddings model would always fail).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from gatewise.config.routing import HealthCheckConfig
from gatewise.core.errors import GatewayError
from gatewise.core.types import ChatRequest, Message
from gatewise.routing.catalog import ModelCatalog, Target
from gatewise.routing.failures import outcome
from gatewise.routing.router import Router

log = logging.getLogger("gatewise")


class HealthChecks:
    """The checking loop of one generation (started and stopped with it)."""

    def __init__(self, config: HealthCheckConfig, catalog: ModelCatalog, router: Router) -> None:
        self.config = config
        self.router = router
        self.targets: list[tuple[str, Target]] = []
        seen: set[str] = set()
        for name in config.models:
            route = catalog.get(name)
            for target in route.targets if route is not None else ():
                if target.info.id not in seen:
                    seen.add(target.info.id)
                    self.targets.append((name, target))
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.config.interval_s > 0 and self.targets and self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self.check_all()
            await asyncio.sleep(self.config.interval_s)

    async def check_all(self) -> Sequence[bool]:
        """Check every deployment once, concurrently; True where it answered."""
        return await asyncio.gather(*(self.check(name, t) for name, t in self.targets))

    async def check(self, model: str, target: Target) -> bool:
        request = ChatRequest(
            model=model, messages=[Message(role="user", content="ping")], max_tokens=1
        )
        started = time.perf_counter()
        health = self.router.board.get(target.info.id)
        health.started()
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await target.provider.chat(request, target.model)
        except (GatewayError, TimeoutError) as error:
            verdict = outcome(error)
            self.router.finished(target.info.id, verdict, None, None)
            log.info("health check of %s failed: %s", target.info.id, _reason(error))
            return False
        except Exception:
            self.router.finished(target.info.id, "failure", None, None)
            log.exception("health check of %s failed", target.info.id)
            return False
        elapsed = (time.perf_counter() - started) * 1000.0
        self.router.finished(target.info.id, "ok", elapsed, elapsed)
        return True


def _reason(error: BaseException) -> str:
    if isinstance(error, GatewayError):
        return f"{error.status} {error.code or error.type}"
    return "timed out"
