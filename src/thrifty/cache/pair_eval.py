"""Score labelled question pairs the way the semantic cache would, and count what it serves.

Shared by the pair check's training script, ``thrifty tune`` and the bench, so all three
measure one thing: a pair is a *hit* when the guards pass, the similarity clears its
threshold and the pair check's probability clears its threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from thrifty.cache.guards import DEFAULT_GUARDS, guard_verdict
from thrifty.cache.pair_data import Pair
from thrifty.cache.pair_features import pair_features
from thrifty.embeddings import get_embedder


@dataclass
class ScoredPairs:
    pairs: list[Pair]
    similarity: np.ndarray  # cosine of the shipped embeddings
    same: np.ndarray  # bool: label
    guard_ok: np.ndarray  # bool: every guard passed
    failed: list[str | None]  # first failing guard
    features: np.ndarray  # pair_features rows
    cross: np.ndarray | None = None  # pair_cross rows (MiniLM), when asked for

    def source(self, name: str) -> np.ndarray:
        return np.array([p.source == name for p in self.pairs], dtype=bool)


def score_pairs(
    pairs: Sequence[Pair], guards: Sequence[str] = DEFAULT_GUARDS, *, cross: bool = False
) -> ScoredPairs:
    """Similarity, guards and features of each pair; MiniLM's cross features too if
    ``cross`` (only for pairs the guards pass: the cache never computes the others)."""
    pairs = list(pairs)
    embedder = get_embedder()
    texts = sorted({t for p in pairs for t in (p.query, p.cached)})
    where = {t: i for i, t in enumerate(texts)}
    vectors = embedder.embed(texts)
    q = np.array([where[p.query] for p in pairs], dtype=np.intp)
    c = np.array([where[p.cached] for p in pairs], dtype=np.intp)
    similarity = np.einsum("ij,ij->i", vectors[q], vectors[c]).astype(np.float64)
    failed = [guard_verdict(p.query, p.cached, guards).failed for p in pairs]
    features = np.array(
        [pair_features(p.query, p.cached, float(s)) for p, s in zip(pairs, similarity, strict=True)]
    ).reshape(len(pairs), -1)
    cross_rows = None
    if cross:
        from thrifty.cache.pair_cross import CROSS_FEATURES, cross_features

        cross_rows = np.zeros((len(pairs), len(CROSS_FEATURES)))
        for i, p in enumerate(pairs):
            if failed[i] is None:
                cross_rows[i] = cross_features(p.query, p.cached)
    return ScoredPairs(
        pairs=pairs,
        similarity=similarity,
        same=np.array([p.same for p in pairs], dtype=bool),
        guard_ok=np.array([f is None for f in failed], dtype=bool),
        failed=failed,
        features=features,
        cross=cross_rows,
    )


def counts(hit: np.ndarray, same: np.ndarray) -> dict[str, Any]:
    """Hits, false hits, false-hit rate (of hits), recall, and the share of negatives served."""
    hits, false_hits = int(hit.sum()), int((hit & ~same).sum())
    positives, negatives = int(same.sum()), int((~same).sum())
    return {
        "pairs": int(same.size),
        "positives": positives,
        "hits": hits,
        "false_hits": false_hits,
        "false_hit_rate": false_hits / hits if hits else 0.0,
        "recall": (hits - false_hits) / positives if positives else 0.0,
        "negatives_served": false_hits / negatives if negatives else 0.0,
    }
