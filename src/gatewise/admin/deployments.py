"""/admin/v1/deployments: every deployment's live routing state, as this worker sees it.

Health, breaker state and until when, cool-down, latency averages, calls in flight,
the recent error rate and the upstream's last rate-limit headroom. Latency, load and
headroom are per worker (each worker measures its own traffic); breaker and cool-down
state is shared by every worker and replica when ``state.backend`` is ``redis``.
Deployments are shared infrastructure: only platform admins see them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gatewise.admin.authz import Caller, requires
from gatewise.identity.roles import Permission

router = APIRouter(prefix="/admin/v1/deployments", tags=["deployments"])

#: What the gateway hands the admin app: the deployments' current view.
DeploymentView = Callable[[], list[dict[str, Any]]]


class HeadroomOut(BaseModel):
    """What the upstream's last rate-limit headers said (null: never said)."""

    remaining_requests: int | None
    requests_reset_s: float | None
    remaining_tokens: int | None
    tokens_reset_s: float | None


class DeploymentOut(BaseModel):
    id: str = Field(description="The deployment's name (default provider/model).")
    model: str = Field(description="The public model it serves (its first, if several).")
    provider: str
    upstream_model: str
    region: str | None
    weight: int
    tags: list[str]
    healthy: bool = Field(description="Whether calls are routed to it now.")
    state: str = Field(description="Its circuit breaker: closed, open or half_open.")
    open_until: float | None = Field(description="Open until (UTC epoch seconds).")
    open_remaining_s: float | None
    probe_in_flight: bool = Field(description="Half-open: its one probe call is under way.")
    cooldown_until: float | None = Field(description="Cooling down after a 429 until (epoch s).")
    cooldown_remaining_s: float | None
    in_flight: int = Field(description="Calls under way (this worker).")
    ttfb_ewma_ms: float | None = Field(description="Smoothed time to first byte (this worker).")
    total_ewma_ms: float | None = Field(description="Smoothed whole duration (this worker).")
    requests: int = Field(description="Attempts ended within the breaker's window.")
    error_rate: float | None = Field(description="Their failure share (null: none).")
    consecutive_failures: int
    headroom: HeadroomOut


class DeploymentsOut(BaseModel):
    data: list[DeploymentOut]
    total: int


@router.get("", summary="Every deployment's health, breaker, latency, load and headroom")
async def list_deployments(
    request: Request, caller: Annotated[Caller, Depends(requires(Permission.DEPLOYMENTS_READ))]
) -> DeploymentsOut:
    view: DeploymentView | None = getattr(request.app.state, "deployments", None)
    data = [DeploymentOut.model_validate(item) for item in (view() if view is not None else [])]
    return DeploymentsOut(data=data, total=len(data))
