"""The routing decision: which model answers a request, and why.

Candidates (the task's list, else ``routing.candidates``, else every chat model) are
filtered by the guards, then one strategy picks:

* ``rules``: the first candidate that fits, in the configured order;
* ``threshold``: the cheapest candidate whose predicted quality is at least
  ``threshold`` × the reference model's predicted quality;
* ``tradeoff``: the candidate maximising predicted quality − λ × expected cost per 1k
  requests (USD). Predicted quality is relative to the reference model (1.0 = as good),
  so this spends quality where it buys the most: a long prompt saves more per routed
  request than a short one at the same risk.

With no prediction for any fitting candidate, the reference model answers. With
``share`` < 1, only that share of requests (by a hash of the prompt, ``share_hash``: the
same prompt always goes the same way) is decided by the strategy; the rest go to the
reference model when it fits.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from thrifty.registry import ModelRegistry, ResolvedModel
from thrifty.routing.config import RoutingConfig
from thrifty.routing.guards import needed_capabilities, why_unfit
from thrifty.routing.predictor import Prediction, QualityPredictor
from thrifty.routing.tasks import TaskPrediction
from thrifty.routing.text import prompt_text
from thrifty.tokens import count_messages


@dataclass(slots=True)
class RouteDecision:
    model: str
    task: str
    task_confidence: float
    reason: str
    predicted: dict[str, float] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    decision_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task": self.task,
            "task_confidence": round(self.task_confidence, 3),
            "reason": self.reason,
            "predicted_quality": {m: round(q, 3) for m, q in self.predicted.items()},
            "excluded": self.excluded,
            "decision_ms": round(self.decision_ms, 3),
        }


@dataclass(slots=True)
class Prepared:
    text: str
    tags: dict[str, str]
    task: TaskPrediction
    fitting: list[ResolvedModel]
    excluded: dict[str, str]
    prompt_tokens: int


def expected_cost(model: ResolvedModel, prompt_tokens: int, prediction: Prediction | None) -> float:
    """USD of one answer: prompt at the input price, predicted length at the output price."""
    if model.price is None:
        return math.inf
    output = (
        prediction.output_tokens if prediction and not math.isnan(prediction.output_tokens) else 256
    )
    return prompt_tokens * model.price.input_per_token + output * model.price.output_per_token


def share_hash(text: str) -> float:
    """A prompt's place in [0, 1) for ``share`` (independent of the predictor's folds)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8, person=b"thrifty-share").digest()
    return int.from_bytes(digest, "little") / 2**64


class Router:
    def __init__(
        self,
        config: RoutingConfig,
        registry: ModelRegistry,
        reference_model: str,
        classifier: Any,
        predictor: QualityPredictor | None,
        embed: Any,
    ) -> None:
        self._config = config
        self._registry = registry
        self._reference = reference_model
        self._classifier = classifier
        self._predictor = predictor
        self._embed = embed
        self._all = config.candidates or [
            n
            for n in registry.names
            if (p := registry.get(n).price) is None or p.mode in (None, "chat")
        ]

    def decide(self, body: dict[str, Any], tags: Mapping[str, str] | None = None) -> RouteDecision:
        """The model for ``body``; ``tags`` are the request's (a learned predictor may use them)."""
        started = time.perf_counter()
        decision = self.choose(self.prepare(body, tags))
        decision.decision_ms = (time.perf_counter() - started) * 1000
        return decision

    def prepare(self, body: dict[str, Any], tags: Mapping[str, str] | None = None) -> Prepared:
        """Everything about a request the strategy's knob does not change (the tuner
        prepares each training request once and tries every knob value on it)."""
        messages = body.get("messages") or []
        text = prompt_text(messages)
        embedding = self._embed(text) if self._embed is not None else None
        task: TaskPrediction = (
            self._classifier.classify(text, embedding=embedding)
            if embedding is not None and hasattr(self._classifier, "classify_many")
            else self._classifier.classify(text)
        )
        candidates = self._config.tasks.get(task.task) or self._all
        prompt_tokens = count_messages(messages, self._reference).tokens
        max_output = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
        needs = needed_capabilities(body)
        fitting: list[ResolvedModel] = []
        excluded: dict[str, str] = {}
        for name in candidates:
            model = self._registry.get(name)
            problem = why_unfit(model, prompt_tokens, max_output, needs)
            if problem:
                excluded[name] = problem
            else:
                fitting.append(model)
        return Prepared(text, dict(tags or {}), task, fitting, excluded, prompt_tokens)

    def choose(self, prepared: Prepared) -> RouteDecision:
        """The strategy's pick for a prepared request."""
        p = prepared
        share = self._config.share
        held = share < 1 and share_hash(p.text) >= share
        reference = [m for m in p.fitting if m.name == self._reference] if held else []
        if reference:
            decision = RouteDecision(self._reference, "", 0.0, f"outside the routed share {share}")
        else:
            decision = self._pick(p.text, p.tags, p.fitting, p.prompt_tokens)
        decision.task, decision.task_confidence = p.task.task, p.task.confidence
        decision.excluded = dict(p.excluded)
        return decision

    def _pick(
        self,
        text: str,
        tags: Mapping[str, str],
        fitting: list[ResolvedModel],
        prompt_tokens: int,
    ) -> RouteDecision:
        if not fitting:
            return RouteDecision(self._reference, "", 0.0, "no candidate fits: reference model")
        if self._config.strategy == "rules" or self._predictor is None:
            return RouteDecision(fitting[0].name, "", 0.0, "first fitting model for the task")
        predictions = self._predictor.predict(text, tags)
        predicted = {m.name: predictions[m.name].quality for m in fitting if m.name in predictions}
        if not predicted:
            return RouteDecision(self._reference, "", 0.0, "no prediction: reference model")
        costs = {m.name: expected_cost(m, prompt_tokens, predictions.get(m.name)) for m in fitting}
        if self._config.strategy == "tradeoff":
            lam = self._config.tradeoff_lambda
            best = max(predicted, key=lambda m: predicted[m] - lam * costs[m] * 1000)
            return RouteDecision(best, "", 0.0, f"max quality − {lam}·cost", predicted)
        reference = predictions.get(self._reference)
        bar = self._config.threshold * (reference.quality if reference else max(predicted.values()))
        for name in sorted(predicted, key=lambda m: costs[m]):
            if predicted[name] >= bar:
                return RouteDecision(
                    name, "", 0.0, f"cheapest with predicted quality ≥ {bar:.3f}", predicted
                )
        best = max(predicted, key=lambda m: predicted[m])
        return RouteDecision(best, "", 0.0, "none reaches the bar: best predicted", predicted)
