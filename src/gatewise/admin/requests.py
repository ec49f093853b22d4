"""/admin/v1/requests: one record per request, newest first, and one request's record.

Reading records takes ``audit:read`` (platform admins, tenant admins, viewers),
like usage and the audit trail. A platform admin sees every tenant (or one,
with ``tenant_id``); everyone else only its own tenant's requests, whatever it
asks for, and another tenant's record answers 404 like a missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gatewise.admin.authz import Caller, OutOfScope, list_tenant, not_found, requires
from gatewise.admin.requests_schemas import RequestRecordDetailOut, RequestRecordOut
from gatewise.admin.schemas import Limit, Offset, PageOut, empty_page, moment_query, page_of
from gatewise.core.errors import InvalidRequestError
from gatewise.identity.roles import Permission as P
from gatewise.store.records import RecordFilter, RecordsRepository, parse_statuses

router = APIRouter(prefix="/admin/v1/requests", tags=["requests"])
Reader = Annotated[Caller, Depends(requires(P.AUDIT_READ))]


@router.get("", summary="Request records, newest first")
async def list_requests(
    caller: Reader,
    tenant_id: Annotated[
        str | None, Query(description="Only this tenant (others than platform admins: their own)")
    ] = None,
    key_id: str | None = None,
    model: Annotated[str | None, Query(description="The model the client asked for")] = None,
    status: Annotated[
        str | None,
        Query(
            description="Comma-separated statuses (`429`) or classes of them (`4xx`)",
            examples=["5xx", "429,503"],
        ),
    ] = None,
    since: float | None = moment_query(", inclusive"),
    until: float | None = moment_query(", exclusive"),
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Text in the model, path, error type, user agent or kept bodies "
            "(case-insensitive)",
        ),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PageOut[RequestRecordOut]:
    try:
        statuses = () if status is None else parse_statuses(status)
    except ValueError as exc:
        raise InvalidRequestError(f"status: {exc}.", param="status") from None
    tenant = list_tenant(caller, tenant_id)
    if tenant.empty:
        return empty_page(limit, offset)
    where = RecordFilter(
        tenant_id=tenant.value,
        key_id=key_id,
        model=model,
        statuses=statuses,
        since=since,
        until=until,
        text=q,
    )
    page = await RecordsRepository(caller.store.database).page(where, limit, offset)
    return page_of(page, RequestRecordOut.of)


@router.get("/{request_id}", summary="One request's record, bodies included")
async def get_request(caller: Reader, request_id: str) -> RequestRecordDetailOut:
    row = await RecordsRepository(caller.store.database).get(request_id)
    if row is None:
        raise not_found("request", request_id)
    if not caller.sees(row["tenant_id"]):
        raise OutOfScope("request", request_id)
    return RequestRecordDetailOut.of(row)
