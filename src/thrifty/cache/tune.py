"""Pick the semantic cache's similarity threshold for a false-hit budget, honestly.

Input: labelled question pairs (JSON Lines ``{"a": ..., "b": ..., "same": bool}``), e.g.
pairs from your own traffic that a person judged. The pairs are split in two (fixed
seed): the threshold is chosen on one half (the lowest whose false hits stay within the
budget, guards applied) and reported on the other.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from thrifty.cache.calibrate import evaluate, pick_threshold
from thrifty.cache.guards import guard_verdict
from thrifty.embeddings import get_embedder


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
    pairs: Sequence[tuple[str, str, bool]], guards: Sequence[str]
) -> tuple[list[float], list[bool], list[bool]]:
    embed = get_embedder().embed
    a = embed([p[0] for p in pairs])
    b = embed([p[1] for p in pairs])
    similarities = np.einsum("ij,ij->i", a, b).tolist()
    guard_ok = [guard_verdict(x, y, guards).ok for x, y, _ in pairs]
    return similarities, [p[2] for p in pairs], guard_ok


def tune_threshold(
    pairs: Sequence[tuple[str, str, bool]], budget: float, guards: Sequence[str], seed: int = 0
) -> dict[str, Any]:
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    choose, report = [pairs[i] for i in order[:half]], [pairs[i] for i in order[half:]]
    choice = pick_threshold(*_score(choose, guards), budget)
    held_out = evaluate(choice.threshold, *_score(report, guards))
    return {
        "threshold": None if math.isinf(choice.threshold) else round(choice.threshold, 4),
        "false_hit_budget": budget,
        "chosen_on": {
            "pairs": len(choose),
            "false_hit_rate": choice.false_hit_rate,
            "recall": choice.recall,
        },
        "held_out": {k: v for k, v in held_out.items() if k != "threshold"},
    }
