"""The structured request log: the ``observability.logs`` config section.

Every log line carries the request id and the W3C trace id when it is about a
request, so a line, a span and a request record can be joined. ``requests`` is the
per-request line (``observe.access_log``); left unset it follows the older
``server.access_log`` switch, and ``level`` follows ``server.log_level``, so configs
written before this section keep working unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gatewise.config.base import Strict

Level = Literal["debug", "info", "warning", "error"]


class LogsConfig(Strict):
    format: Literal["json", "text"] = Field(
        "json",
        description=(
            "json: one JSON object per line (for log pipelines); text: one readable line "
            "each (for a terminal), with the same fields as key=value pairs."
        ),
    )
    level: Level | None = Field(None, description="Default: server.log_level.")
    requests: bool | None = Field(
        None,
        description=(
            "One line per request (model calls and admin API alike; costs CPU). "
            "Default: server.access_log."
        ),
    )

    def level_or(self, server_level: Level) -> Level:
        return self.level if self.level is not None else server_level

    def request_lines(self, server_access_log: bool) -> bool:
        """Whether the per-request line is written."""
        return self.requests if self.requests is not None else server_access_log
