"""``thrifty tune``: the cheapest configuration that keeps quality, with an honest estimate.

Candidates come from the enabled techniques' search spaces (``search.py``); what they
learn (a router's quality predictor, a cascade's verifier) is fitted on training rows
only. k-fold cross-validation: on each fold, the learned parts are fitted and the
candidate is *chosen* on the other folds, then *measured* on this one; the pooled
held-out rows give the estimate, with a bootstrap confidence interval. A number measured
on the rows a choice was made on is never reported as the estimate. The configuration
written out is fitted and chosen on all rows.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thrifty.config import parse_config
from thrifty.errors import ConfigError
from thrifty.recordings.dataset import ReplayRecord
from thrifty.replay.search import Candidate, candidates_for, deep_merge
from thrifty.replay.simulator import RowOutcome, replay, without_techniques
from thrifty.replay.summary import comparable, totals


@dataclass
class Evaluated:
    candidate: Candidate
    outcomes: list[RowOutcome]


@dataclass
class TuneResult:
    chosen: Evaluated
    evaluated: list[Evaluated]
    baseline: list[RowOutcome]
    fit: dict[str, Any]
    held_out: dict[str, Any]


def select(
    evaluated: Sequence[Evaluated],
    baseline: Sequence[RowOutcome],
    rows: Sequence[int],
    target: float,
) -> int:
    """Index of the cheapest candidate whose quality retained on ``rows`` is ≥ ``target``;
    if none reaches it, the one that retains the most quality."""
    best, best_key = 0, (1, float("inf"))
    for index, item in enumerate(evaluated):
        usable = [i for i in rows if item.outcomes[i].ok]
        t = totals(item.outcomes, baseline, usable)
        retained = t["quality_retained"] or 0.0
        key = (0, t["actual_cost"]) if retained >= target else (1, -retained)
        if key < best_key:
            best, best_key = index, key
    return best


def _bootstrap(
    actual: Sequence[RowOutcome],
    baseline: Sequence[RowOutcome],
    rows: Sequence[int],
    seed: int,
    draws: int = 1000,
) -> dict[str, list[float]]:
    rng = random.Random(seed)
    savings, retained = [], []
    for _ in range(draws):
        sample = [rows[rng.randrange(len(rows))] for _ in rows]
        t = totals(actual, baseline, sample)
        savings.append(t["savings_pct"])
        if t["quality_retained"] is not None:
            retained.append(t["quality_retained"])

    def interval(values: list[float]) -> list[float]:
        values.sort()
        if not values:
            return []
        return [
            values[int(0.025 * len(values))],
            values[min(len(values) - 1, int(0.975 * len(values)))],
        ]

    return {"savings_pct_ci": interval(savings), "quality_retained_ci": interval(retained)}


def fold_rows(rows: Sequence[int], folds: int, seed: int) -> list[list[int]]:
    """Split ``rows`` into ``folds`` disjoint, shuffled folds (at least 2)."""
    order = list(rows)
    random.Random(seed).shuffle(order)
    k = max(2, min(folds, len(order)))
    return [sorted(order[fold::k]) for fold in range(k)]


EvaluateFor = Callable[[Sequence[int], str], list[Evaluated]]


def cross_validate(
    evaluate_for: EvaluateFor,
    baseline: Sequence[RowOutcome],
    target: float,
    folds: int,
    seed: int,
) -> dict[str, Any]:
    """k-fold estimate of the selection procedure.

    ``evaluate_for(train_rows, tag)`` returns the candidates, replayed on every row, with
    anything learned (a router's predictor, a verifier) fitted on ``train_rows`` only; the
    choice is made on the training rows and measured on the held-out fold.
    """
    rows = comparable(baseline, baseline)
    fold_list = fold_rows(rows, folds, seed)
    held_actual: list[RowOutcome] = []
    held_baseline: list[RowOutcome] = []
    chosen_labels = []
    for number, test in enumerate(fold_list):
        held = set(test)
        train = [i for i in rows if i not in held]
        evaluated = evaluate_for(train, f"fold{number}")
        pick = evaluated[select(evaluated, baseline, train, target)]
        chosen_labels.append(pick.candidate.label)
        for i in test:
            held_actual.append(pick.outcomes[i])
            held_baseline.append(baseline[i])
    usable = [i for i, a in enumerate(held_actual) if a.ok]
    estimate = totals(held_actual, held_baseline, usable)
    return {
        "folds": len(fold_list),
        "rows": len(usable),
        "target_quality": target,
        "chosen_per_fold": chosen_labels,
        **estimate,
        **_bootstrap(held_actual, held_baseline, usable, seed),
    }


def techniques_off(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The raw config with routing and cascade off: valid before anything is trained."""
    return deep_merge(raw, {"routing": {"enabled": False}, "cascade": {"enabled": False}})


def tune(
    records: Sequence[ReplayRecord],
    raw_config: Mapping[str, Any],
    target: float,
    *,
    folds: int = 5,
    seed: int = 0,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    workdir: Path | None = None,
) -> TuneResult:
    """Choose on all rows (writing learned files under ``workdir``), estimate by k-fold."""
    base = parse_config(techniques_off(raw_config), env, base_dir)
    baseline_model = base.baseline_model or base.default_model
    if baseline_model is None:
        raise ValueError("tuning needs baseline_model (or default_model) in the config")
    if not any(a.quality is not None for r in records for a in r.answers.values()):
        raise ValueError("tuning needs recorded answers with a quality; this dataset has none")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="thrifty-tune-"))
    baseline = replay(records, without_techniques(base, baseline_model))

    def evaluate_for(train: Sequence[int], tag: str) -> list[Evaluated]:
        train_records = [records[i] for i in train]
        evaluated = []
        for candidate in candidates_for(raw_config, base, train_records, workdir / tag, seed=seed):
            try:
                patched = parse_config(deep_merge(raw_config, candidate.patch), env, base_dir)
            except ConfigError:
                continue  # e.g. "as configured" before a predictor exists
            evaluated.append(Evaluated(candidate, replay(records, patched)))
        if not evaluated:
            raise ValueError("no candidate configuration is valid; check the technique sections")
        return evaluated

    all_rows = comparable(baseline, baseline)
    evaluated = evaluate_for(all_rows, "final")
    chosen = evaluated[select(evaluated, baseline, all_rows, target)]
    fit = totals(chosen.outcomes, baseline, [i for i in all_rows if chosen.outcomes[i].ok])
    held_out = cross_validate(evaluate_for, baseline, target, folds, seed)
    return TuneResult(chosen, evaluated, baseline, fit, held_out)
