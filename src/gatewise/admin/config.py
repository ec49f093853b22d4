"""/admin/v1/config: the live config of this worker, and reloading it.

``GET`` shows what serves (the config file's hash, when it was loaded, from where) and
how the last reload went (its errors at ``file:line``), so a rejected reload is visible
without reading logs. ``POST .../reload`` reloads this worker now and answers with the
outcome: a rejected config is a 200 with ``last_result: rejected`` (the old one keeps
serving), not an error of the API. Each worker reloads on its own: with several
workers, send SIGHUP to the server (it tells every worker) or let the watcher run.
Config is the platform's own: only platform admins read or reload it.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal, Protocol

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gatewise.admin.authz import Caller, requires
from gatewise.admin.errors import ConflictError
from gatewise.identity.roles import Permission

router = APIRouter(prefix="/admin/v1/config", tags=["config"])


class Status(Protocol):
    """A reload status, as this API reads it (``runtime.reload.ReloadStatus``)."""

    @property
    def source_path(self) -> str: ...
    @property
    def config_hash(self) -> str: ...
    @property
    def loaded_at(self) -> float: ...
    @property
    def last_attempt_at(self) -> float | None: ...
    @property
    def last_trigger(self) -> str | None: ...
    @property
    def last_result(self) -> str | None: ...
    @property
    def errors(self) -> list[str]: ...


class ConfigControl(Protocol):
    """What the gateway hands the admin app: its reloader (``runtime.reload.Reloader``)."""

    @property
    def status(self) -> Status: ...

    async def reload(self, trigger: str, *, force: bool = True) -> Status: ...


class ConfigStatusOut(BaseModel):
    source_path: str = Field(description="The config file this worker serves from.")
    config_hash: str = Field(description="SHA-256 of the serving file (and prompt folder).")
    loaded_at: float = Field(description="When the serving config was loaded (epoch s).")
    last_attempt_at: float | None = Field(description="The last reload attempt (epoch s).")
    last_trigger: str | None = Field(description="What asked for it: sighup, watch or admin.")
    last_result: Literal["loaded", "rejected", "unchanged"] | None
    errors: list[str] = Field(description="The last attempt's errors, file:line each.")
    pid: int = Field(description="This worker's process id (each worker answers for itself).")


def _control(request: Request) -> ConfigControl:
    control: ConfigControl | None = getattr(request.app.state, "config_control", None)
    if control is None:
        raise ConflictError(
            "This gateway was not started from a config file.", code="no_config_file"
        )
    return control


def _out(status: Status) -> ConfigStatusOut:
    return ConfigStatusOut.model_validate(
        {
            "source_path": status.source_path,
            "config_hash": status.config_hash,
            "loaded_at": status.loaded_at,
            "last_attempt_at": status.last_attempt_at,
            "last_trigger": status.last_trigger,
            "last_result": status.last_result,
            "errors": list(status.errors),
            "pid": os.getpid(),
        }
    )


@router.get("", summary="The live config: its hash, load time, file and last reload")
async def config_status(
    request: Request, caller: Annotated[Caller, Depends(requires(Permission.CONFIG_READ))]
) -> ConfigStatusOut:
    return _out(_control(request).status)


@router.post("/reload", summary="Reload this worker's config now (rejected: the old one serves)")
async def reload_config(
    request: Request, caller: Annotated[Caller, Depends(requires(Permission.CONFIG_WRITE))]
) -> ConfigStatusOut:
    return _out(await _control(request).reload("admin"))
