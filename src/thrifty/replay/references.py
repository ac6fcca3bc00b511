"""Reference points that put a result in context: what would simple policies achieve?

* **always-<model>** for every configured chat model (the baseline is one of them);
* **always-cheapest**: the single model with the lowest total cost;
* **random-at-equal-cost**: a coin flip between the baseline and one cheaper model,
  weighted to cost what the evaluated policy costs; of the cheaper models, the one whose
  mix retains the most quality (a router must beat this; ``thrifty tune`` can always
  choose such a mix itself: ``routing.share``);
* **oracle**: per request, the cheapest model whose recorded quality matches the
  baseline's (an upper bound no real router reaches).

All of them are replays through the real pipeline, one model at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thrifty.config.schema import ThriftyConfig
from thrifty.recordings.dataset import ReplayRecord
from thrifty.registry import ModelRegistry
from thrifty.replay.simulator import RowOutcome, replay, without_techniques
from thrifty.replay.summary import totals


def chat_models(config: ThriftyConfig) -> list[str]:
    registry = ModelRegistry.from_config(config)
    return [
        name
        for name in registry.names
        if (price := registry.get(name).price) is None or price.mode in (None, "chat")
    ]


def model_matrix(
    records: Sequence[ReplayRecord], config: ThriftyConfig
) -> dict[str, list[RowOutcome]]:
    """Each chat model's replay of every record, techniques off."""
    return {
        model: replay(records, without_techniques(config, model)) for model in chat_models(config)
    }


def _point(label: str, t: dict[str, Any]) -> dict[str, Any]:
    return {"label": label, "cost": t["actual_cost"], "quality_retained": t["quality_retained"]}


def reference_points(
    matrix: dict[str, list[RowOutcome]],
    baseline: Sequence[RowOutcome],
    rows: Sequence[int],
    policy_cost: float | None = None,
) -> list[dict[str, Any]]:
    """Reference points over ``rows`` (indices where the baseline answered)."""
    points = []
    always: dict[str, dict[str, Any]] = {}
    for model, outcomes in matrix.items():
        usable = [i for i in rows if outcomes[i].ok]
        if usable:  # a model with no recorded answer here is no reference point
            always[model] = totals(outcomes, baseline, usable)
    base = totals(baseline, baseline, rows)
    points.append(_point("always-baseline", base))
    if always:
        cheapest = min(always, key=lambda m: always[m]["actual_cost"])
        points.append(_point(f"always-cheapest ({cheapest})", always[cheapest]))
        mix = _best_random_mix(always, base, policy_cost)
        if mix is not None:
            points.append(mix)
        points.append(_point("oracle", totals(_oracle(matrix, baseline, rows), baseline, rows)))
    return points


def _best_random_mix(
    always: dict[str, dict[str, Any]], base: dict[str, Any], policy_cost: float | None
) -> dict[str, Any] | None:
    """Random routing between the baseline and the cheaper model whose mix, at
    ``policy_cost``, retains the most quality (None without a cheaper graded model)."""
    if policy_cost is None:
        return None
    best: dict[str, Any] | None = None
    c_base = base["actual_cost"]
    for model, t in always.items():
        c_cheap, q_cheap = t["actual_cost"], t["quality_retained"]
        if c_cheap >= c_base or q_cheap is None:
            continue
        p = min(1.0, max(0.0, (c_base - policy_cost) / (c_base - c_cheap)))
        quality = (1 - p) + p * q_cheap
        if best is None or quality > best["quality_retained"]:
            best = {"label": "random-at-equal-cost", "model": model, "cost": policy_cost,
                    "quality_retained": quality}  # fmt: skip
    return best


def _oracle(
    matrix: dict[str, list[RowOutcome]], baseline: Sequence[RowOutcome], rows: Sequence[int]
) -> list[RowOutcome]:
    out = list(baseline)
    for i in rows:
        target = baseline[i].quality
        if target is None:
            continue
        good = [
            outcomes[i]
            for outcomes in matrix.values()
            if outcomes[i].ok and outcomes[i].quality is not None and outcomes[i].quality >= target
        ]
        if good:
            out[i] = min(good, key=lambda o: o.cost)
    return out
