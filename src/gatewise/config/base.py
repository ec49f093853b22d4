"""Building blocks every config section shares: strict frozen models and the name rule."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Unknown keys are errors (a typo never goes unnoticed); a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Name = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+\-]*$"),
]
