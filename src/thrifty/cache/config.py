"""The semantic cache's second-stage settings (``cache.semantic.pair_check``).

Kept beside the cache so the feature owns its settings; ``config/schema.py`` only hooks
the section in. Forbids unknown keys like every other section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PairCheckConfig(BaseModel):
    """The offline learned pair check (``thrifty.cache.pair_check``): on by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    """Minimum P(same answer) to serve a hit; None: the operating point shipped with the
    model (chosen on held-out pairs for a 1% false-hit budget)."""
    model: str | None = None
    """A model file written by ``scripts/train_pair_check.py`` or ``thrifty tune``; None:
    the shipped one."""

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"no pair-check model file at {value!r}")
        return value
