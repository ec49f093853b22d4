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

from gatewise.admin.authz import Caller, requires
from gatewise.identity.roles import Permission

router = APIRouter(prefix="/admin/v1/deployments", tags=["deployments"])

#: What the gateway hands the admin app: the deployments' current view.
DeploymentView = Callable[[], list[dict[str, Any]]]


@router.get("", summary="Every deployment's health, breaker, latency, load and headroom")
async def list_deployments(
    request: Request, caller: Annotated[Caller, Depends(requires(Permission.DEPLOYMENTS_READ))]
) -> dict[str, Any]:
    view: DeploymentView | None = getattr(request.app.state, "deployments", None)
    data = view() if view is not None else []
    return {"data": data, "total": len(data)}
