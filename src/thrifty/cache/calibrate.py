"""Pick the semantic cache's similarity threshold for a false-hit budget (pure functions).

Input: labelled candidate pairs (new question, cached question) with their cosine
similarity, whether they really ask the same thing (``same``) and whether the guards passed
(``guard_ok``). A pair is a *hit* at threshold ``t`` when ``similarity >= t`` and the guards
pass; a *false hit* is a hit whose pair is not the same question. The false-hit rate is
false hits / hits (the share of served answers that are wrong); recall is true pairs hit /
true pairs. Example::

    >>> pick_threshold([0.99, 0.97, 0.95], [True, False, True], [True, False, True], 0.01)
    ThresholdChoice(threshold=0.95, false_hit_rate=0.0, recall=1.0, hits=2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = [
    "OperatingPoint",
    "ThresholdChoice",
    "evaluate",
    "hits_at",
    "pick_operating_point",
    "pick_threshold",
]


class ThresholdChoice(NamedTuple):
    """The chosen threshold and what it gives on the data it was chosen on.

    ``threshold`` is ``math.inf`` (never hit) when no threshold meets the budget.
    """

    threshold: float
    false_hit_rate: float
    recall: float
    hits: int


def _check(similarities: Sequence[float], same: Sequence[bool], guard_ok: Sequence[bool]) -> None:
    if not len(similarities) == len(same) == len(guard_ok):
        raise ValueError("similarities, same and guard_ok must have the same length")


def evaluate(
    threshold: float,
    similarities: Sequence[float],
    same: Sequence[bool],
    guard_ok: Sequence[bool],
) -> dict[str, Any]:
    """Hits, false hits, false-hit rate (of hits; 0 when no hit) and recall at ``threshold``."""
    _check(similarities, same, guard_ok)
    hits = false_hits = 0
    for sim, is_same, ok in zip(similarities, same, guard_ok, strict=True):
        if ok and sim >= threshold:
            hits += 1
            false_hits += not is_same
    positives = sum(bool(s) for s in same)
    return {
        "threshold": threshold,
        "pairs": len(same),
        "positives": positives,
        "hits": hits,
        "false_hits": false_hits,
        "false_hit_rate": false_hits / hits if hits else 0.0,
        "recall": (hits - false_hits) / positives if positives else 0.0,
    }


def pick_threshold(
    similarities: Sequence[float],
    same: Sequence[bool],
    guard_ok: Sequence[bool],
    false_hit_budget: float,
) -> ThresholdChoice:
    """The lowest threshold (most recall) whose false-hit rate is ≤ ``false_hit_budget``.

    Candidates are the similarities of guard-passing pairs (a threshold between two of them
    behaves like the next one up). The rate is not monotone in the threshold, so every
    candidate is checked; ties hit together. O(n log n).
    """
    _check(similarities, same, guard_ok)
    if not 0.0 <= false_hit_budget <= 1.0:
        raise ValueError("false_hit_budget must be in [0, 1]")
    candidates = sorted(
        ((float(s), bool(y)) for s, y, ok in zip(similarities, same, guard_ok, strict=True) if ok),
        reverse=True,
    )
    positives = sum(bool(s) for s in same)
    best = ThresholdChoice(math.inf, 0.0, 0.0, 0)
    hits = false_hits = 0
    for i, (sim, is_same) in enumerate(candidates):
        hits += 1
        false_hits += not is_same
        if i + 1 < len(candidates) and candidates[i + 1][0] == sim:
            continue  # equal similarities are hit together
        if false_hits <= false_hit_budget * hits:
            recall = (hits - false_hits) / positives if positives else 0.0
            best = ThresholdChoice(sim, false_hits / hits, recall, hits)
    return best


class OperatingPoint(NamedTuple):
    """Similarity and pair-check thresholds, and what they give on the data chosen on.

    Both thresholds are ``math.inf`` (never hit) when no pair meets the budget.
    """

    similarity_threshold: float
    pair_threshold: float
    false_hit_rate: float
    recall: float
    hits: int


def hits_at(
    similarity_threshold: float,
    pair_threshold: float,
    similarities: Sequence[float],
    pair_scores: Sequence[float],
    guard_ok: Sequence[bool],
) -> list[bool]:
    """Which pairs are hits: similarity and pair score at or above theirs, guards passing."""
    return [
        bool(ok) and s >= similarity_threshold and p >= pair_threshold
        for s, p, ok in zip(similarities, pair_scores, guard_ok, strict=True)
    ]


def pick_operating_point(
    similarities: Sequence[float],
    pair_scores: Sequence[float],
    same: Sequence[bool],
    guard_ok: Sequence[bool],
    false_hit_budget: float,
    *,
    recall_on: Sequence[bool] | None = None,
    similarity_grid: Sequence[float] | None = None,
    groups: Sequence[str] | None = None,
) -> OperatingPoint:
    """The (similarity, pair-check) thresholds with the most recall within the budget.

    A hit needs guards passing, ``similarity >= s`` and ``pair score >= p``. For each ``s``
    on the grid (default 0.50, 0.51, … 1.00) every distinct pair score is tried as ``p``;
    the false-hit rate (false hits / all hits) must stay ≤ the budget. Recall counts the
    true pairs flagged in ``recall_on`` (default: all), so a source of interest can be the
    objective while every source's false hits count. Ties go to the higher thresholds.
    With ``groups`` (a source name per pair) the budget holds for each source separately
    (every source's false hits / its hits), not only pooled.
    """
    _check(similarities, same, guard_ok)
    if len(pair_scores) != len(same):
        raise ValueError("pair_scores must have the same length as similarities")
    if not 0.0 <= false_hit_budget <= 1.0:
        raise ValueError("false_hit_budget must be in [0, 1]")
    mask = [True] * len(same) if recall_on is None else [bool(m) for m in recall_on]
    positives = sum(1 for y, m in zip(same, mask, strict=True) if y and m)
    grid = similarity_grid or [round(0.5 + i / 100, 2) for i in range(51)]
    group = [""] * len(same) if groups is None else list(groups)
    best = OperatingPoint(math.inf, math.inf, 0.0, 0.0, 0)
    for s_threshold in sorted(grid, reverse=True):
        rows = zip(similarities, pair_scores, same, guard_ok, mask, group, strict=True)
        candidates = sorted(
            (
                (float(p), bool(y), bool(m), g)
                for s, p, y, ok, m, g in rows
                if ok and s >= s_threshold
            ),
            reverse=True,
        )
        hits = false_hits = true_counted = 0
        per_hits: dict[str, int] = {}
        per_false: dict[str, int] = {}
        for i, (score, is_same, counted, g) in enumerate(candidates):
            hits += 1
            false_hits += not is_same
            true_counted += is_same and counted
            per_hits[g] = per_hits.get(g, 0) + 1
            per_false[g] = per_false.get(g, 0) + (not is_same)
            if i + 1 < len(candidates) and candidates[i + 1][0] == score:
                continue
            recall = true_counted / positives if positives else 0.0
            within = all(per_false[k] <= false_hit_budget * per_hits[k] for k in per_hits)
            if within and recall > best.recall:
                best = OperatingPoint(s_threshold, score, false_hits / hits, recall, hits)
    return best
