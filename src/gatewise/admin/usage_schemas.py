"""Response bodies of /admin/v1/usage (pydantic: the OpenAPI docs and the serialisation).

Money leaves as an exact decimal string of dollars (``"12.345678"``), never a
float; the window's ends are UTC epoch seconds, like every admin time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gatewise.admin.schemas import EPOCH
from gatewise.store.usage import GroupBy, UsageRow


class UsageGroupOut(BaseModel):
    group: str | None = Field(
        description="The tenant, team, app or key id, the model name or the HTTP status; null "
        "for calls without that id (e.g. an app outside any team)"
    )
    requests: int = Field(
        description="Calls admitted: they reached an upstream, or the gateway answered them"
    )
    refused: int = Field(
        description="Calls that limits, budgets (429) or access (403) turned away before any "
        "upstream"
    )
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: str = Field(
        description="The known cost in USD, exact, 6 decimals", examples=["12.345678"]
    )
    cost_unknown_requests: int = Field(
        description="Calls of a model without a price (not counted in cost_usd)"
    )

    @classmethod
    def of(cls, row: UsageRow) -> UsageGroupOut:
        return cls.model_validate(row.as_dict())


class UsageOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    data: list[UsageGroupOut]
    since: float = Field(alias="from", description=EPOCH + ", inclusive")
    until: float = Field(alias="to", description=EPOCH + ", exclusive")
    group_by: GroupBy
