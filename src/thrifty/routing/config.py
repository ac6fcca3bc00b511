"""The ``routing:`` section."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from thrifty.section import NonNegativeFloat, Section

TASKS = ("chat", "code", "math", "summarization", "translation", "extraction", "creative")


class LabelRules(Section):
    """One label's rules: whole-word keywords and regexes, each with a weight (a plain
    list gives each a weight of 1). A label's score is the sum of its matching rules'."""

    keywords: dict[str, float] | list[str] = Field(default_factory=dict)
    patterns: dict[str, float] | list[str] = Field(default_factory=dict)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: dict[str, float] | list[str]) -> dict[str, float] | list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a regex: {exc}") from None
        return value


class RoutingConfig(Section):
    """Route requests that leave the choice to Thrifty to the cheapest capable model.

    A request is routed when it names no model, names ``auto``, or names a model in
    ``applies_to``; ``x-thrifty-route: off`` (or a model name) overrides per request.
    """

    enabled: bool = False
    strategy: Literal["rules", "threshold", "tradeoff"] = "rules"
    """rules: per task, the first listed model that fits; threshold: the cheapest model
    whose predicted quality is ≥ threshold × the reference model's; tradeoff: the model
    maximising predicted quality − tradeoff_lambda × expected cost per 1k requests (USD)."""
    classifier: Literal["rules", "learned"] = "rules"
    rules: dict[str, Any] = Field(default_factory=dict)
    """A whole rule set that REPLACES the built-in one (see docs/routing.md); to add to the
    built-in rules, use ``labels``."""
    labels: dict[str, LabelRules] = Field(default_factory=dict)
    """Your own labels (``legal: {keywords: {contract: 2}}``), and rules added to built-in
    ones (``code: {keywords: [terraform]}``): added to the built-in rules, never replacing
    them. Route a label with ``tasks``."""
    candidates: list[str] = Field(default_factory=list)
    """Models the router may pick (default: every configured chat model)."""
    tasks: dict[str, list[str]] = Field(default_factory=dict)
    """Per task, its candidate models in order of preference (rules) or as a set."""
    applies_to: list[str] = Field(default_factory=list)
    predictor: str | None = None
    """Quality predictor trained by ``thrifty tune`` (a .npz file; relative to the config)."""
    threshold: Annotated[float, Field(ge=0, le=1.5)] = 0.95
    tradeoff_lambda: NonNegativeFloat = 0.0
    share: Annotated[float, Field(ge=0, le=1)] = 1.0
    """The share of routed requests (by a hash of the prompt) the strategy decides; the
    rest go to the reference model. ``thrifty tune`` lowers it when mixing a cheaper
    policy with the reference keeps the quality target more cheaply than any knob value
    alone (a weak predictor: the mix is random routing at worst)."""
    use_tags: bool = True
    """Whether ``thrifty tune`` trains the predictor on the requests' tags too."""
    encoder: Literal["none", "static", "minilm"] = "none"
    """The sentence embedding ``thrifty tune`` adds to the predictor's features (measured
    in docs/routing.md): none, the shipped static embedder, or MiniLM (~6 ms a decision)."""
    prior: str = "shipped"
    """The routing prior (``shipped``, ``none`` or a .npz path): with no predictor, the
    router predicts each model by its price tier from it; ``thrifty tune`` starts from it."""
    reference_model: str | None = None
    """What predicted quality is compared with (default: baseline_model, else default_model)."""

    @model_validator(mode="after")
    def _consistent(self) -> RoutingConfig:
        known = [*TASKS, *(label for label in self.labels if label not in TASKS)]
        unknown = sorted(set(self.tasks) - set(known))
        if unknown:
            raise ValueError(
                f"tasks: unknown task(s) {unknown}; known: {known} (add yours under labels)"
            )
        learned = self.predictor or self.prior != "none"
        if self.enabled and self.strategy != "rules" and not learned:
            raise ValueError(
                f"strategy {self.strategy!r} needs a predictor (run thrifty tune) or a prior"
            )
        return self
