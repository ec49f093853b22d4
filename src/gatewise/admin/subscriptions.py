"""/admin/v1/subscriptions: apps ask for a model, tenant admins approve, reject or revoke.

A consumer requests and reads only its own app's subscriptions; a developer
requests for its own team's apps; deciding needs ``subscriptions:decide``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends

from gatewise.admin.authz import (
    Caller,
    check_team_write,
    fetch,
    list_app,
    list_tenant,
    not_found,
    requires,
    sees_app,
    team_bound,
)
from gatewise.admin.schemas import (
    Decision,
    Limit,
    Offset,
    PageOut,
    SubscriptionOut,
    SubscriptionRequest,
    empty_page,
    page_of,
)
from gatewise.core.errors import InvalidRequestError
from gatewise.identity.records import Subscription, SubscriptionStatus
from gatewise.identity.roles import Permission as P

router = APIRouter(prefix="/admin/v1/subscriptions", tags=["subscriptions"])
Reader = Annotated[Caller, Depends(requires(P.SUBSCRIPTIONS_READ))]
Requester = Annotated[Caller, Depends(requires(P.SUBSCRIPTIONS_REQUEST))]
Decider = Annotated[Caller, Depends(requires(P.SUBSCRIPTIONS_DECIDE))]


async def _visible(caller: Caller, sub_id: str) -> Subscription:
    sub = await fetch(caller, caller.store.get_subscription, sub_id, "subscription")
    if not sees_app(caller, sub.app_id):
        raise not_found("subscription", sub_id)
    return sub


@router.get("", summary="List subscriptions (a consumer: its own app's)")
async def list_subscriptions(
    caller: Reader,
    tenant_id: str | None = None,
    app_id: str | None = None,
    model: str | None = None,
    status: SubscriptionStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PageOut[SubscriptionOut]:
    tenant, app = list_tenant(caller, tenant_id), list_app(caller, app_id)
    if tenant.empty or app.empty:
        return empty_page(limit, offset)
    page = await caller.store.list_subscriptions(
        tenant_id=tenant.value,
        app_id=app.value,
        model=model,
        status=status,
        limit=limit,
        offset=offset,
    )
    return page_of(page, SubscriptionOut.of)


@router.post("", status_code=201, summary="Request access to a model for an app")
async def request_subscription(caller: Requester, body: SubscriptionRequest) -> SubscriptionOut:
    app_id = body.app_id or caller.principal.app_id
    if app_id is None:
        raise InvalidRequestError("Missing required parameter: 'app_id'.", param="app_id")
    app = await fetch(caller, caller.store.get_app, app_id, "app", param="app_id")
    if not sees_app(caller, app_id):
        raise not_found("app", app_id, "app_id")
    if team_bound(caller):
        check_team_write(caller, app.team_id)
    if body.model not in caller.model_names():
        raise InvalidRequestError(
            f"model: '{body.model}' is not a model of this gateway.",
            param="model",
            code="model_not_found",
        )
    sub = await caller.store.request_subscription(
        caller.actor, app_id=app_id, model=body.model, note=body.note
    )
    return SubscriptionOut.of(sub)


@router.get("/{subscription_id}", summary="One subscription")
async def get_subscription(caller: Reader, subscription_id: str) -> SubscriptionOut:
    return SubscriptionOut.of(await _visible(caller, subscription_id))


@router.post("/{subscription_id}/approve", summary="Approve a pending request")
async def approve_subscription(
    caller: Decider, subscription_id: str, body: Decision | None = None
) -> SubscriptionOut:
    return await _decide(caller, subscription_id, body, caller.store.approve_subscription)


@router.post("/{subscription_id}/reject", summary="Reject a pending request")
async def reject_subscription(
    caller: Decider, subscription_id: str, body: Decision | None = None
) -> SubscriptionOut:
    return await _decide(caller, subscription_id, body, caller.store.reject_subscription)


@router.post("/{subscription_id}/revoke", summary="Withdraw an approved subscription")
async def revoke_subscription(
    caller: Decider, subscription_id: str, body: Decision | None = None
) -> SubscriptionOut:
    return await _decide(caller, subscription_id, body, caller.store.revoke_subscription)


async def _decide(
    caller: Caller,
    subscription_id: str,
    body: Decision | None,
    transition: Callable[..., Awaitable[Subscription]],
) -> SubscriptionOut:
    """One state change (approve, reject, revoke) of a subscription the caller can see."""
    await _visible(caller, subscription_id)
    reason = body.reason if body else None
    return SubscriptionOut.of(await transition(caller.actor, subscription_id, reason=reason))
