"""Pick the semantic cache's thresholds for a false-hit budget, honestly.

Input: labelled question pairs (JSON Lines ``{"a": ..., "b": ..., "same": bool}``), e.g.
pairs from your own traffic that a person judged. The pairs are split in two (fixed
seed): the similarity threshold and the pair check's threshold are chosen together on one
half (the most recall whose false hits stay within the budget, guards applied) and
reported on the other.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from thrifty.cache.calibrate import hits_at, pick_operating_point
from thrifty.cache.pair_check import PairCheck, load_pair_check
from thrifty.cache.pair_data import Pair
from thrifty.cache.pair_eval import ScoredPairs, counts, score_pairs


def load_pairs(path: str | Path) -> list[tuple[str, str, bool]]:
    pairs = []
    for number, line in enumerate(Path(path).read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            pairs.append((str(row["a"]), str(row["b"]), bool(row["same"])))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: expected {{a, b, same}} ({exc})") from None
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return pairs


def _score(
    pairs: Sequence[tuple[str, str, bool]], guards: Sequence[str], check: PairCheck | None
) -> tuple[ScoredPairs, list[float]]:
    cross = check is not None and check.cross
    scored = score_pairs(
        [Pair(a, b, same, "yours", "") for a, b, same in pairs], guards, cross=cross
    )
    if check is None:
        return scored, [1.0] * len(pairs)
    return scored, check.scores(scored).tolist()


def tune_threshold(
    pairs: Sequence[tuple[str, str, bool]],
    budget: float,
    guards: Sequence[str],
    seed: int = 0,
    *,
    pair_check: bool = True,
    model: str | Path | None = None,
) -> dict[str, Any]:
    """Similarity and pair-check thresholds chosen on half the pairs, reported on the other.

    With ``pair_check=False`` only the similarity threshold is chosen (guards applied).
    ``threshold`` is None when no setting meets the budget on the choosing half.
    """
    check = load_pair_check(model) if pair_check else None
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    choose, report = [pairs[i] for i in order[:half]], [pairs[i] for i in order[half:]]
    scored, scores = _score(choose, guards, check)
    point = pick_operating_point(
        scored.similarity.tolist(), scores, scored.same.tolist(), scored.guard_ok.tolist(),
        budget, similarity_grid=None if check else sorted({float(s) for s in scored.similarity}),
    )  # fmt: skip
    held, held_scores = _score(report, guards, check)
    hit = hits_at(
        point.similarity_threshold, point.pair_threshold if check else 0.0,
        held.similarity.tolist(), held_scores, held.guard_ok.tolist(),
    )  # fmt: skip
    found = not math.isinf(point.similarity_threshold)
    return {
        "threshold": round(point.similarity_threshold, 4) if found else None,
        "pair_check_threshold": round(point.pair_threshold, 4) if found and check else None,
        "false_hit_budget": budget,
        "chosen_on": {
            "pairs": len(choose),
            "false_hit_rate": point.false_hit_rate,
            "recall": point.recall,
        },
        "held_out": counts(np.array(hit, dtype=bool), held.same),
    }
