"""The semantic cache's second stage: a learned check that two questions want one answer.

Runs after the similarity threshold and the guards, on the one candidate they let
through. Offline (no model call): :func:`~thrifty.cache.pair_features.pair_features`
(lexical overlap, word order, position-weighted embeddings, entity overlap) and, when the
MiniLM encoder is installed, :func:`~thrifty.cache.pair_cross.cross_features` (the two
questions read together by all-MiniLM-L6-v2, aligned token by token) fed to a small
gradient-boosted tree model (:mod:`thrifty.cache.pair_model`).

Two shipped models, both trained by ``scripts/train_pair_check.py`` on the train split of
``cache.pair_data``, each carrying its operating point (similarity and pair-check
thresholds) chosen on the dev split: ``pair_check_minilm.npz`` (lexical + MiniLM, used
when MiniLM is installed) and ``pair_check.npz`` (lexical only, ~0.2 ms, the fallback).
Example::

    check = load_pair_check()
    check.probability("Convert 100 km to miles", "How many miles is 100 km?", 0.91)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from thrifty.cache.pair_cross import CROSS_FEATURES, cross_features
from thrifty.cache.pair_features import FEATURES, pair_features
from thrifty.cache.pair_model import TreeModel
from thrifty.learned import load_cached

if TYPE_CHECKING:
    from thrifty.cache.pair_eval import ScoredPairs

log = logging.getLogger(__name__)
MODEL_PATH = Path(__file__).resolve().parent / "data" / "pair_check.npz"
MINILM_MODEL_PATH = Path(__file__).resolve().parent / "data" / "pair_check_minilm.npz"
Encoder = Literal["auto", "minilm", "static"]


@dataclass(frozen=True)
class PairCheck:
    model: TreeModel
    similarity_threshold: float  # the operating point chosen on dev (file metadata)
    pair_threshold: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def cross(self) -> bool:
        """Whether the model reads MiniLM's cross features (needs the encoder installed)."""
        return len(self.model.features) > len(FEATURES)

    def probability(self, query: str, cached: str, similarity: float) -> float:
        """P(one answer serves both), from the model; higher is safer to serve."""
        row = pair_features(query, cached, similarity)
        if self.cross:
            row = np.concatenate([row, cross_features(query, cached)])
        return float(self.model.predict(row)[0])

    def scores(self, scored: ScoredPairs) -> np.ndarray:
        """P(same) for every pair of ``scored`` (``score_pairs(..., cross=self.cross)``)."""
        if not self.cross:
            return self.model.predict(scored.features)
        if scored.cross is None:
            raise ValueError("this pair check reads MiniLM features: score_pairs(cross=True)")
        return self.model.predict(np.hstack([scored.features, scored.cross]))


def _build(arrays: Any) -> PairCheck:
    model = TreeModel.from_arrays(arrays)
    if model.features not in (FEATURES, FEATURES + CROSS_FEATURES):
        raise ValueError(
            f"pair-check model expects features {model.features}, this version computes "
            f"{FEATURES} (+ {CROSS_FEATURES}); retrain with scripts/train_pair_check.py"
        )
    meta = json.loads(str(arrays["meta"]))
    return PairCheck(
        model, float(arrays["similarity_threshold"]), float(arrays["pair_threshold"]), meta
    )


def default_model(encoder: Encoder = "auto") -> Path:
    """The shipped model for ``encoder``: auto picks MiniLM's when it is installed."""
    from thrifty.embeddings.minilm import INSTALL_HINT, minilm_available

    if encoder == "static":
        return MODEL_PATH
    if minilm_available():
        return MINILM_MODEL_PATH
    if encoder == "minilm":
        raise RuntimeError(
            f"pair_check.encoder is minilm but MiniLM is not installed: {INSTALL_HINT}"
        )
    log.warning(
        "MiniLM is not installed (%s): the pair check reads lexical features only", INSTALL_HINT
    )
    return MODEL_PATH


def load_pair_check(path: str | Path | None = None, encoder: Encoder = "auto") -> PairCheck:
    """The model at ``path`` (default: the shipped one for ``encoder``), read once per
    file version. A model that reads MiniLM features needs the encoder installed."""
    check = load_cached(path or default_model(encoder), _build, "cache_pair_check")
    if check.cross:
        from thrifty.embeddings.minilm import INSTALL_HINT, minilm_available

        if not minilm_available():
            raise RuntimeError(f"this pair-check model reads MiniLM features: {INSTALL_HINT}")
    return check
