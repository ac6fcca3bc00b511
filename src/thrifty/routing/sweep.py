"""The routing knob's grid for the tuner, from the training rows' cross-fitted curve.

For every training prompt: each candidate's predicted quality (cross-fitted: never from
a model that saw the prompt's own grades), its expected cost (as the router computes
it), and its recorded grade. Sweeping the knob (``threshold`` or ``tradeoff_lambda``)
gives an estimated quality-retained curve without replaying anything. The grid is the
two ends (always the reference model; always the cheapest) plus up to ``BAND`` values
where the estimate lies near the target, so the tuner's real replays (and the
confidence margin ``tuner.select`` applies) decide among close, fine-grained points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from thrifty.recordings.dataset import ReplayRecord
from thrifty.registry import ModelRegistry
from thrifty.routing.policy import expected_cost
from thrifty.routing.predictor import QualityPredictor
from thrifty.routing.text import prompt_text
from thrifty.tokens import count_messages

BAND = 6
LOW, HIGH = 0.008, 0.015  # the band around the target the grid is fine in
ABOVE = (0.02, 0.03, 0.045, 0.065, 0.09)  # levels above the target: the knees (``_knees``)
NEVER_LAMBDA = 0.0
ALWAYS_LAMBDA = 1e9


def _matrices(
    predictor: QualityPredictor,
    train: Sequence[ReplayRecord],
    models: list[str],
    reference: str,
    registry: ModelRegistry,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted relative quality, expected cost and recorded grade: (rows, models)."""
    n, m = len(train), len(models)
    predicted, cost, grade = np.zeros((n, m)), np.full((n, m), np.inf), np.full((n, m), np.nan)
    resolved = [registry.get(name) for name in models]
    for i, record in enumerate(train):
        predictions = predictor.predict(prompt_text(record.messages), record.tags)
        tokens = count_messages(list(record.messages), reference).tokens
        for j, model in enumerate(models):
            p = predictions.get(model)
            predicted[i, j] = p.quality if p is not None else -math.inf
            cost[i, j] = expected_cost(resolved[j], tokens, p)
            answer = record.answers.get(model)
            if answer is not None and answer.quality is not None:
                grade[i, j] = answer.quality
    return predicted, cost, grade


def _retained(choice: np.ndarray, grade: np.ndarray, ref: int) -> float:
    rows = np.arange(len(choice))
    got = grade[rows, choice]
    usable = ~np.isnan(got) & ~np.isnan(grade[:, ref])
    base = grade[usable, ref].sum()
    return float(got[usable].sum() / base) if base > 0 else 1.0


def knob_grid(
    predictor: QualityPredictor,
    train: Sequence[ReplayRecord],
    models: list[str],
    reference: str,
    registry: ModelRegistry,
    strategy: str,
    target: float | None,
) -> list[float]:
    """Knob values to try, ends included, ascending for ``threshold`` (stricter last)."""
    models = list(dict.fromkeys([*models, reference]))
    ref = models.index(reference)
    predicted, cost, grade = _matrices(predictor, train, models, reference, registry)
    finite = np.where(np.isfinite(cost), cost, 1e9)
    if strategy == "tradeoff":
        gap = finite[:, [ref]] - finite  # saving per request vs the reference
        loss = predicted[:, [ref]] - predicted
        breaks = (loss / np.maximum(gap * 1000, 1e-15))[(gap > 0) & np.isfinite(loss)]
        values = np.unique(np.quantile(breaks, np.linspace(0, 1, 201))) if breaks.size else []

        def choose(v: float) -> np.ndarray:
            return np.argmax(predicted - v * finite * 1000, axis=1)  # type: ignore[no-any-return]

        ends = [NEVER_LAMBDA, ALWAYS_LAMBDA]
    else:
        values = np.unique(np.quantile(predicted[np.isfinite(predicted)], np.linspace(0, 1, 201)))
        order = np.argsort(finite, axis=1)

        def choose(v: float) -> np.ndarray:
            ok = np.take_along_axis(predicted, order, axis=1) >= v
            first = np.argmax(ok, axis=1)
            return order[np.arange(len(order)), first]  # type: ignore[no-any-return]

        ends = [0.0, 1.0]
    curve = [(float(v), _retained(choose(float(v)), grade, ref)) for v in values]
    if target is None or not curve:
        picks = [v for v, _ in curve][:: max(1, len(curve) // BAND)]
    else:
        near = [v for v, r in curve if target - LOW <= r <= target + HIGH]
        if not near:  # the curve jumps over the band: the values either side of the target
            above = [v for v, r in curve if r >= target]
            below = [v for v, r in curve if r < target]
            near = above[-2:] + below[:2] if strategy == "tradeoff" else above[:2] + below[-2:]
        picks = near[:: max(1, math.ceil(len(near) / BAND))]
        picks += _knees(curve, target, cheaper_first=strategy != "tradeoff")
    return sorted({*ends, *(round(v, 6) for v in picks)})


def _knees(curve: list[tuple[float, float]], target: float, cheaper_first: bool) -> list[float]:
    """For each level above the band, the cheapest value whose estimate reaches it.

    The tuner's confidence margin can be wider than the band (a few hundred rows: ~0.02),
    and the curve can jump (one prompt type switching model at once): without these, the
    grid may hold nothing between "always the reference" and points the margin rejects.
    Cheapest = the largest λ (``tradeoff``) or the smallest threshold."""
    out = []
    for level in (*(target + d for d in ABOVE), 1.0):
        reaching = [v for v, r in curve if r >= min(level, 1.0)]
        if reaching:
            out.append(reaching[0] if cheaper_first else reaching[-1])
    return out
