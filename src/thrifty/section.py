"""The one config base: unknown keys are errors that name the key; sections are frozen."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveFloat = Annotated[float, Field(gt=0)]


NonNegativeFloat = Annotated[float, Field(ge=0)]

