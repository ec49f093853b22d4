"""``server.reload``: when a worker re-reads its config by itself (a file watcher).

SIGHUP and ``POST /admin/v1/config/reload`` always reload; the watcher is off by
default because a half-saved file would otherwise be tried (and rejected) on the
way: turn it on where the config is written atomically (a Git sync, a ConfigMap).
"""

from __future__ import annotations

from pydantic import Field

from gatewise.config.base import Strict


class ReloadConfig(Strict):
    watch: bool = Field(
        False,
        description=(
            "Poll the config file and the prompt folder; reload when their content changes."
        ),
    )
    watch_interval_s: float = Field(
        2.0, gt=0, le=3600, description="How often the watcher looks (seconds)."
    )
