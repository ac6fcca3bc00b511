"""The semantic cache's second stage: a learned check that two questions want one answer.

Runs after the similarity threshold and the guards, on the one candidate they let
through. Offline and fast (no model call, ~0.1 ms warm; see ``bench/semantic_cache.py``):
:func:`~thrifty.cache.pair_features.pair_features` (lexical overlap, word order,
position-weighted embeddings, entity overlap) fed to a small gradient-boosted tree model
(:mod:`thrifty.cache.pair_model`). The shipped model (``cache/data/pair_check.npz``) is
trained by ``scripts/train_pair_check.py`` on the train split of ``cache.pair_data``; the
file also carries the operating point (similarity and pair-check thresholds) chosen on
the dev split for a 1% false-hit budget. Example::

    check = load_pair_check()
    check.probability("Convert 100 km to miles", "How many miles is 100 km?", 0.91)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thrifty.cache.pair_features import FEATURES, pair_features
from thrifty.cache.pair_model import TreeModel
from thrifty.learned import load_cached

MODEL_PATH = Path(__file__).resolve().parent / "data" / "pair_check.npz"


@dataclass(frozen=True)
class PairCheck:
    model: TreeModel
    similarity_threshold: float  # the operating point chosen on dev (file metadata)
    pair_threshold: float
    meta: dict[str, Any] = field(default_factory=dict)

    def probability(self, query: str, cached: str, similarity: float) -> float:
        """P(one answer serves both), from the model; higher is safer to serve."""
        return float(self.model.predict(pair_features(query, cached, similarity))[0])


def _build(arrays: Any) -> PairCheck:
    model = TreeModel.from_arrays(arrays)
    if model.features != FEATURES:
        raise ValueError(
            f"pair-check model expects features {model.features}, this version computes "
            f"{FEATURES}; retrain with scripts/train_pair_check.py"
        )
    meta = json.loads(str(arrays["meta"]))
    return PairCheck(
        model, float(arrays["similarity_threshold"]), float(arrays["pair_threshold"]), meta
    )


def load_pair_check(path: str | Path | None = None) -> PairCheck:
    """The model at ``path`` (default: the shipped one), read once per file version."""
    return load_cached(path or MODEL_PATH, _build, "cache_pair_check")
