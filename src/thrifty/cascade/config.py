"""The ``cascade:`` section."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from thrifty.section import Section


class TierConfig(Section):
    model: str
    checks: list[str | dict[str, Any]] = Field(default_factory=lambda: ["heuristics", "format"])
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    """The tier's answer is accepted when its combined check score is ≥ this."""


class CascadeConfig(Section):
    """Try a cheap model first, check its answer, escalate when the check fails.

    Applies to the same requests as routing (see ``applies_to``); when routing chose a
    model that is a tier, the cascade starts there. The last tier is always accepted.
    """

    enabled: bool = False
    tiers: list[TierConfig] = Field(default_factory=list)
    applies_to: list[str] = Field(default_factory=list)
    judge_model: str | None = None
    verifier: str | None = None
    """Learned answer verifier trained by ``thrifty tune`` (a .npz file; relative to the config)."""

    @model_validator(mode="after")
    def _tiers(self) -> CascadeConfig:
        if self.enabled and len(self.tiers) < 2:
            raise ValueError("tiers: a cascade needs at least two tiers")
        return self

