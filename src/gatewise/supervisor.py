"""The supervisor of ``gatewise serve --workers N``: uvicorn's, with a prompt stop.

uvicorn's parent process holds the listening socket the workers share and looks at
its signals every half second. On SIGTERM it told the workers to drain but kept its
own copy of the socket open until the last worker had exited: the kernel went on
accepting connections into the backlog that no process would ever take, and reset
them when the parent exited (after the drain, up to ``timeout_graceful_shutdown``).

This one looks at its signals every 50 ms (workers are still health-checked every
half second, as uvicorn does) and closes its copy of the socket before telling the
workers to stop; each worker closes its own as its drain begins. From then on a new
connection is refused, so load balancers and clients retry elsewhere at once, while
the requests and streams in flight finish.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal

from uvicorn.supervisors.multiprocess import Multiprocess

log = logging.getLogger("uvicorn.error")

#: How often the parent looks at its signals, and how many looks between health checks.
SIGNAL_INTERVAL = 0.05
HEALTH_CHECK_EVERY = 10


class Supervisor(Multiprocess):
    def run(self) -> None:
        log.info("Started parent process [%d]", os.getpid())
        self.init_processes()
        looks = 0
        while not self.should_exit.wait(SIGNAL_INTERVAL):
            self.handle_signals()
            looks += 1
            if looks % HEALTH_CHECK_EVERY == 0:
                self.keep_subprocess_alive()
        self.terminate_all()
        self.join_all()
        log.info("Stopping parent process [%d]", os.getpid())

    def handle_hup(self) -> None:
        """Reload, not restart: each worker reloads its config and keeps its connections,
        counters and streams (uvicorn's own SIGHUP restarts every worker)."""
        log.info("Received SIGHUP, telling the workers to reload their config.")
        for process in self.processes:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # exited: it restarts anyway
                    os.kill(process.pid, signal.SIGHUP)

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()  # the workers close theirs as they begin to drain
        super().terminate_all()
