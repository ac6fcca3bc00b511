"""``thrifty tune``: the cheapest configuration that keeps quality, with an honest estimate.

Candidates come from the enabled techniques' search spaces (``search.py``); what they
learn (a router's quality predictor, a cascade's verifier) is fitted on training rows
only. k-fold cross-validation: on each fold, the learned parts are fitted and the
candidate is *chosen* on the other folds, then *measured* on this one; the pooled
held-out rows give the estimate, with a bootstrap confidence interval. A number measured
on the rows a choice was made on is never reported as the estimate. The configuration
written out is fitted and chosen on all rows.

The choice keeps a safety margin of ``z`` standard errors, and ``z`` itself is chosen by
the same folds (:func:`calibrated_margin`): the smallest of :data:`MARGIN_GRID` whose
out-of-fold quality reaches the target. Choosing the cheapest of many candidates on the
same rows favours those the noise flattered (on 150 rows the chosen policy landed below
the target on average); the folds see that and widen the margin, and where there is
evidence enough (thousands of rows) the smallest margin already lands and is kept.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thrifty.config import parse_config
from thrifty.config.schema import ThriftyConfig
from thrifty.errors import ConfigError
from thrifty.recordings.dataset import ReplayRecord
from thrifty.replay.decisions import DecisionReplay
from thrifty.replay.search import Candidate, candidates_for, deep_merge
from thrifty.replay.simulator import Replayer, RowOutcome, without_techniques
from thrifty.replay.summary import comparable, ledger_baseline, quality_pair, totals
from thrifty.replay.thresholds import family_key, family_outcomes
from thrifty.routing.build import reference_model
from thrifty.routing.policy import share_hash
from thrifty.routing.text import prompt_text


@dataclass
class Evaluated:
    candidate: Candidate
    outcomes: list[RowOutcome]
    config: ThriftyConfig | None = None
    by_decisions: bool = False  # outcomes assembled by ``DecisionReplay``
    mixable: bool = False  # may be taken at a routing share (see ``select``)


@dataclass
class TuneResult:
    chosen: Evaluated
    evaluated: list[Evaluated]
    baseline: list[RowOutcome]
    fit: dict[str, Any]
    held_out: dict[str, Any]


#: The safety margin, in standard errors of the quality retained measured on the rows a
#: choice is made on: a candidate must keep ``target`` + Z·SE there (a one-sided 84%
#: bound). The SE shrinks with the evidence (≈ 0.004 at 7,000 rows) and, for a mix, with
#: the share routed (below), so a small set still lands near the target.
MARGIN_Z = 1.0
#: The margins (in standard errors) the folds choose from, smallest first (``MARGIN_Z``).
MARGIN_GRID = (MARGIN_Z, 1.5, 2.0, 3.0, 4.0)
SHARE_STEP = 0.01  # shares are chosen on this grid (rounded down: the safe side)


@dataclass(frozen=True)
class Pick:
    """A candidate (its index) and the share of requests it routes (``routing.share``):
    the rest go to the reference model, i.e. the baseline's outcome."""

    index: int
    share: float = 1.0


def retained_se(
    actual: Sequence[RowOutcome], baseline: Sequence[RowOutcome], rows: Sequence[int]
) -> float:
    """Standard error of quality retained (Σ actual / Σ baseline) over ``rows``, paired,
    by the delta method: what the same choice would retain on other rows like these."""
    pairs = [p for i in rows if (p := quality_pair(actual[i], baseline[i])) is not None]
    total = sum(b for _, b in pairs)
    if len(pairs) < 2 or total <= 0:
        return 0.0
    ratio = sum(a for a, _ in pairs) / total
    return math.sqrt(sum((a - ratio * b) ** 2 for a, b in pairs)) / total


def safe_share(retained: float, se: float, target: float, margin_z: float = MARGIN_Z) -> float:
    """The largest share s of requests a policy may route (the rest to the reference)
    so that the mix keeps ``target`` with its margin.

    Which requests are routed is a hash of the prompt, independent of their quality, so
    the mix's expected quality retained is 1 − s·(1 − retained) and its standard error
    s·SE: the margin shrinks with the share, and the whole of the measured rows informs
    the estimate (not only the routed ones)."""
    loss = (1.0 - retained) + margin_z * se
    if loss <= 0:
        return 1.0
    share = min(1.0, max(0.0, (1.0 - target) / loss))
    return math.floor(share / SHARE_STEP + 1e-9) * SHARE_STEP


@dataclass(frozen=True)
class Measured:
    """What a choice needs of one candidate on the rows it chooses on (measured once,
    then compared under every margin)."""

    retained: float | None
    se: float
    cost: float
    reference_cost: float
    mixable: bool


def measure(
    evaluated: Sequence[Evaluated], baseline: Sequence[RowOutcome], rows: Sequence[int]
) -> list[Measured]:
    out = []
    for item in evaluated:
        usable = [i for i in rows if item.outcomes[i].ok]
        t = totals(item.outcomes, baseline, usable)
        out.append(
            Measured(
                t["quality_retained"],
                retained_se(item.outcomes, baseline, usable),
                t["actual_cost"],
                sum(baseline[i].cost for i in usable),
                item.mixable,
            )
        )
    return out


def choose(measured: Sequence[Measured], target: float, margin_z: float, mixable: bool) -> Pick:
    """:func:`select` on candidates already measured."""
    best, best_key = Pick(0), (1, float("inf"))
    for index, m in enumerate(measured):
        retained = m.retained or 0.0
        share = 1.0 if retained - margin_z * m.se >= target else 0.0
        if mixable and m.mixable and m.retained is not None:
            share = safe_share(retained, m.se, target, margin_z)
        if share > 0:
            pick, key = Pick(index, share), (0, share * m.cost + (1 - share) * m.reference_cost)
        else:
            pick, key = Pick(index), (1, -retained)
        if key < best_key:
            best, best_key = pick, key
    return best


def shares_to(config: ThriftyConfig, baseline_model: str) -> bool:
    """Whether a routing share would send the requests outside it to ``baseline_model``
    and nothing more, as :func:`mixed` assumes: the router's reference is that model and
    may answer every request (it is among ``candidates`` and every ``tasks`` list), no
    cascade climbs on from it, and no share is set already (mixing by the same hash
    again changes nothing, though the mix's formula would say it does)."""
    routing = config.routing
    if not routing.enabled or routing.share < 1:
        return False
    if reference_model(routing, config.baseline_model or config.default_model) != baseline_model:
        return False
    if routing.candidates and baseline_model not in routing.candidates:
        return False
    if any(baseline_model not in models for models in routing.tasks.values()):
        return False
    climbing = [tier.model for tier in config.cascade.tiers[:-1]] if config.cascade.enabled else []
    return baseline_model not in climbing


def select(
    evaluated: Sequence[Evaluated],
    baseline: Sequence[RowOutcome],
    rows: Sequence[int],
    target: float,
    margin_z: float = MARGIN_Z,
    mixable: bool = False,
) -> Pick:
    """The cheapest candidate whose quality retained on ``rows``, less ``margin_z``
    standard errors, is ≥ ``target``; if none reaches it, the one that retains the most.

    ``mixable``: a candidate whose rows are independent and that routes (``Evaluated.
    mixable``: routing alone, or routing into a cascade) may also be taken at a share
    < 1 (``safe_share``), its expected cost then s·cost + (1 − s)·baseline cost: the
    router sends the other requests to the reference, where no cascade starts. Random
    routing to a cheaper model is one such mix, so a weak predictor still saves what
    random routing saves at the target, and lands near it."""
    return choose(measure(evaluated, baseline, rows), target, margin_z, mixable)


def mixed(
    outcomes: Sequence[RowOutcome],
    baseline: Sequence[RowOutcome],
    hashes: Sequence[float] | None,
    share: float,
) -> list[RowOutcome]:
    """Row outcomes of a candidate taken at ``share``: the rows whose prompt hash is
    outside the share are the reference model's (``Router`` does the same)."""
    if share >= 1 or hashes is None:
        return list(outcomes)
    return [o if h < share else b for o, b, h in zip(outcomes, baseline, hashes, strict=True)]


def with_share(candidate: Candidate, share: float) -> Candidate:
    if share >= 1:
        return candidate
    return Candidate(
        f"{candidate.label}, share {share:.2f}",
        deep_merge(candidate.patch, {"routing": {"share": round(share, 4)}}),
    )


def _bootstrap(
    actual: Sequence[RowOutcome],
    baseline: Sequence[RowOutcome],
    rows: Sequence[int],
    seed: int,
    draws: int = 1000,
) -> dict[str, list[float]]:
    """95% percentile intervals of savings and quality retained over resampled rows."""
    import numpy as np

    cost_a = np.array([actual[i].cost for i in rows], dtype=np.float64)
    cost_b = np.array([ledger_baseline(actual[i]) for i in rows], dtype=np.float64)
    pairs = [quality_pair(actual[i], baseline[i]) for i in rows]
    has_q = np.array([p is not None for p in pairs])
    q_a = np.array([p[0] if p else 0.0 for p in pairs])
    q_b = np.array([p[1] if p else 0.0 for p in pairs])
    rng = np.random.default_rng(seed)
    savings: list[float] = []
    retained: list[float] = []
    for start in range(0, draws if len(rows) else 0, 100):
        sample = rng.integers(0, len(rows), size=(min(100, draws - start), len(rows)))
        base = cost_b[sample].sum(axis=1)
        saved = np.where(
            base > 0, 100.0 * (1 - cost_a[sample].sum(axis=1) / np.where(base > 0, base, 1)), 0.0
        )
        savings.extend(saved.tolist())
        qb = q_b[sample].sum(axis=1)
        ok = (has_q[sample].sum(axis=1) > 0) & (qb > 0)
        retained.extend((q_a[sample].sum(axis=1)[ok] / qb[ok]).tolist())

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


Held = list[tuple[list[RowOutcome], list[RowOutcome]]]  # per fold: (actual, baseline) rows


def _pooled_quality(held: Held, folds: Sequence[int]) -> float | None:
    actual = [a for f in folds for a in held[f][0]]
    baseline = [b for f in folds for b in held[f][1]]
    usable = [i for i, a in enumerate(actual) if a.ok]
    return totals(actual, baseline, usable)["quality_retained"]


def calibrated_margin(
    held: Mapping[float, Held], target: float, folds: Sequence[int] | None = None
) -> float:
    """The smallest margin whose choices, measured out of fold (on ``folds``; default
    all), keep ``target``; the largest when none does. ``held[z][f]``: fold ``f``'s
    held-out rows under the choice made with margin ``z`` on the other folds."""
    grid = sorted(held)
    graded = False
    for z in grid:
        every = range(len(held[z])) if folds is None else folds
        quality = _pooled_quality(held[z], list(every))
        if quality is None:
            continue  # nothing graded under this margin: it proves nothing either way
        graded = True
        if quality >= target:
            return z
    return grid[-1] if graded else grid[0]


def pooled_under_other_folds(
    held: Mapping[float, Held], target: float
) -> tuple[list[float], list[RowOutcome], list[RowOutcome]]:
    """Each fold's held-out rows under the margin the *other* folds chose (so no fold
    measures a margin chosen on its own rows): (the margins, actual rows, baseline rows)."""
    count = len(next(iter(held.values())))
    per_fold = [
        calibrated_margin(held, target, [g for g in range(count) if g != f]) for f in range(count)
    ]
    actual = [a for f, z in enumerate(per_fold) for a in held[z][f][0]]
    baseline = [b for f, z in enumerate(per_fold) for b in held[z][f][1]]
    return per_fold, actual, baseline


def cross_validate(
    evaluate_for: EvaluateFor,
    baseline: Sequence[RowOutcome],
    target: float,
    folds: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
    hashes: Sequence[float] | None = None,
    margins: Sequence[float] = MARGIN_GRID,
) -> dict[str, Any]:
    """k-fold estimate of the selection procedure, and the margin it should use.

    ``evaluate_for(train_rows, tag)`` returns the candidates, replayed on every row, with
    anything learned (a router's predictor, a verifier) fitted on ``train_rows`` only; the
    choice is made on the training rows, with each of ``margins``, and measured on the
    held-out fold. ``margin_z`` is :func:`calibrated_margin` over every fold (what the
    final choice uses); the estimate pools each fold measured under the margin the
    *other* folds chose, so the rows a margin was chosen on never measure it.
    ``hashes``: each row's ``share_hash`` (candidates may then be mixed with the
    reference).
    """
    rows = comparable(baseline, baseline)
    fold_list = fold_rows(rows, folds, seed)
    held: dict[float, Held] = {z: [] for z in margins}
    labels: dict[float, list[str]] = {z: [] for z in margins}
    for number, test in enumerate(fold_list):
        held_rows = set(test)
        train = [i for i in rows if i not in held_rows]
        if progress is not None:
            progress(f"held-out estimate: fold {number + 1}/{len(fold_list)}")
        evaluated = evaluate_for(train, f"fold{number}")
        measured = measure(evaluated, baseline, train)
        for z in margins:
            pick = choose(measured, target, z, mixable=hashes is not None)
            item = evaluated[pick.index]
            labels[z].append(with_share(item.candidate, pick.share).label)
            outcomes = mixed(item.outcomes, baseline, hashes, pick.share)
            held[z].append(([outcomes[i] for i in test], [baseline[i] for i in test]))
    chosen = calibrated_margin(held, target)
    count = len(fold_list)
    per_fold, held_actual, held_baseline = pooled_under_other_folds(held, target)
    usable = [i for i, a in enumerate(held_actual) if a.ok]
    estimate = totals(held_actual, held_baseline, usable)
    return {
        "folds": count,
        "rows": len(usable),
        "target_quality": target,
        "margin_z": chosen,
        "margin_z_per_fold": per_fold,
        "quality_by_margin": {str(z): _pooled_quality(held[z], range(count)) for z in margins},
        "chosen_per_fold": [labels[z][f] for f, z in enumerate(per_fold)],
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
    progress: Callable[[str], None] | None = None,
    fast_thresholds: bool = True,
    margins: Sequence[float] = MARGIN_GRID,
) -> TuneResult:
    """Choose on all rows (writing learned files under ``workdir``), estimate by k-fold.

    ``fast_thresholds``: replay each family of cascade-threshold candidates at about one
    replay per tier (``thresholds.py``); off, every candidate is replayed whole (tests
    compare the two). ``margins``: the safety margins the folds choose from."""
    base = parse_config(techniques_off(raw_config), env, base_dir)
    baseline_model = base.baseline_model or base.default_model
    if baseline_model is None:
        raise ValueError("tuning needs baseline_model (or default_model) in the config")
    if not any(a.quality is not None for r in records for a in r.answers.values()):
        raise ValueError("tuning needs recorded answers with a quality; this dataset has none")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="thrifty-tune-"))
    replay = Replayer(records)  # one set of replay providers for every replay below
    baseline = replay(without_techniques(base, baseline_model))

    say = progress or (lambda _: None)
    decisions = DecisionReplay(records, replay)

    def evaluate_for(train: Sequence[int], tag: str) -> list[Evaluated]:
        train_records = [records[i] for i in train]
        evaluated = []
        candidates = candidates_for(
            raw_config, base, train_records, workdir / tag, seed=seed, target=target, progress=say
        )
        say(f"replaying {len(candidates)} candidate(s) on {len(records)} requests")
        families: dict[str, list[int]] = {}  # threshold families: index in ``evaluated``
        for candidate in candidates:
            try:
                patched = parse_config(deep_merge(raw_config, candidate.patch), env, base_dir)
            except ConfigError:
                continue  # e.g. "as configured" before a predictor exists
            fast = decisions.outcomes(patched)
            key = None if fast is not None else family_key(patched, decisions.distinct)
            # rows independent (routing alone, or a family): a share mixes it
            mixable = (fast is not None or key is not None) and shares_to(patched, baseline_model)
            if fast is not None:
                evaluated.append(
                    Evaluated(candidate, fast, patched, by_decisions=True, mixable=mixable)
                )
            elif key is not None and fast_thresholds:
                families.setdefault(key, []).append(len(evaluated))
                evaluated.append(Evaluated(candidate, [], patched, mixable=mixable))
            else:
                evaluated.append(Evaluated(candidate, replay(patched), patched, mixable=mixable))
        for members in families.values():
            configs = [evaluated[i].config for i in members]
            outcomes = family_outcomes(replay, [c for c in configs if c is not None])
            for index, rows in zip(members, outcomes, strict=True):
                evaluated[index].outcomes = rows
        if not evaluated:
            raise ValueError("no candidate configuration is valid; check the technique sections")
        return evaluated

    hashes = [share_hash(prompt_text(r.messages)) for r in records]
    all_rows = comparable(baseline, baseline)
    say(f"fitting and replaying on all {len(all_rows)} rows")
    evaluated = evaluate_for(all_rows, "final")
    held_out = cross_validate(evaluate_for, baseline, target, folds, seed, say, hashes, margins)
    margin = held_out["margin_z"]
    say(f"choosing on all {len(all_rows)} rows (margin {margin} standard errors, by the folds)")
    pick = select(evaluated, baseline, all_rows, target, margin, mixable=True)
    chosen = evaluated[pick.index]
    if pick.share < 1 and chosen.config is not None:  # the candidate mixed with the reference
        candidate = with_share(chosen.candidate, pick.share)
        config = parse_config(deep_merge(raw_config, candidate.patch), env, base_dir)
        chosen = Evaluated(candidate, replay(config), config)  # the whole pipeline
        evaluated = [*evaluated, chosen]
    elif chosen.by_decisions and chosen.config is not None:  # the whole pipeline, ledger detail
        full = Evaluated(chosen.candidate, replay(chosen.config), chosen.config)
        evaluated = [full if item is chosen else item for item in evaluated]
        chosen = full
    fit = totals(chosen.outcomes, baseline, [i for i in all_rows if chosen.outcomes[i].ok])
    return TuneResult(chosen, evaluated, baseline, fit, held_out)
