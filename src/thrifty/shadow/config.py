"""The ``shadow:`` section (off by default)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from thrifty.section import NonNegativeFloat, PositiveFloat, Section


class ShadowConfig(Section):
    """Shadow evaluation: for a sampled share of answered chat requests, ask each candidate
    model the same question in the background and grade its answer against the served one.

    Needs ``ledger.capture_bodies`` (the answers are stored to become a replay dataset).
    Never changes or delays what the client gets; its spend is bounded by
    ``daily_budget_usd`` (reserved before each shadow, like any request).
    """

    enabled: bool = False
    rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    """Share of eligible requests that are shadowed."""
    max_per_hour: Annotated[int, Field(ge=0)] = 100
    """At most this many shadowed requests per hour, per gateway process (0: no cap)."""
    candidates: list[str] = Field(default_factory=list)
    """Models asked the same question (default: ``routing.candidates``, else every chat
    model, keeping those cheaper than the model that served the request)."""
    judge_model: str | None = None
    """The model that grades (default: the request's baseline model)."""
    grading: Literal["absolute", "pairwise"] = "absolute"
    """absolute: MT-Bench single-answer 1–10 grade of the served and each candidate answer;
    pairwise: MT-Bench pairwise verdict, both orders, ties allowed."""
    daily_budget_usd: NonNegativeFloat = 1.0
    """Shadow and judge spend per UTC day; over it, sampling pauses until the next day."""
    max_request_bytes: Annotated[int, Field(gt=0)] = 32_000
    """Requests whose messages are longer (JSON bytes) are not shadowed."""
    skip_tools: bool = True
    """Do not shadow requests that offer tools (their calls may have side effects)."""
    judge_max_tokens: Annotated[int, Field(gt=0)] = 512
    timeout_s: PositiveFloat = 60.0
    """A candidate or judge call that takes longer is recorded as failed."""
    keys: list[str] = Field(default_factory=list)
    """Opt-in: only requests from these key ids (``thrifty keys list``); empty = any."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Opt-in: only requests carrying all these tags; empty = any."""
