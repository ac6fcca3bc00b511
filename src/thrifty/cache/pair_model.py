"""A tiny gradient-boosted tree model in numpy: the semantic cache pair check's classifier.

Why not a library: the model has ~20 inputs and a few hundred depth-3 trees, it is
trained once by ``scripts/train_pair_check.py`` and shipped as plain arrays (``.npz``, no
pickle); scikit-learn or LightGBM would be a heavy dependency for ~80 lines. Trees are
complete (``2**depth - 1`` split nodes, ``2**depth`` leaves), so prediction is ``depth``
vectorised steps over all trees at once: ~30 µs for one pair.

Training is standard second-order boosting on the logistic loss (XGBoost-style gain with
an L2 leaf penalty), splits searched over per-feature quantile bins, row subsampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TreeModel:
    """``predict`` gives P(same) for rows of features, in ``features`` order."""

    features: tuple[str, ...]
    base: float
    split_feature: np.ndarray  # int (trees, 2**depth - 1)
    split_threshold: np.ndarray  # float (trees, 2**depth - 1): right when x >= threshold
    leaf_value: np.ndarray  # float (trees, 2**depth)

    @property
    def depth(self) -> int:
        return int(self.leaf_value.shape[1]).bit_length() - 1

    def predict(self, rows: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        trees = np.arange(self.split_feature.shape[0])
        node = np.zeros((x.shape[0], trees.size), dtype=np.intp)
        for _ in range(self.depth):
            feature = self.split_feature[trees, node]
            right = np.take_along_axis(x, feature, axis=1) >= self.split_threshold[trees, node]
            node = 2 * node + 1 + right
        leaves = node - self.split_feature.shape[1]
        score = self.base + self.leaf_value[trees, leaves].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-score))

    def arrays(self) -> dict[str, Any]:
        return {
            "features": np.array(self.features),
            "base": np.array(self.base),
            "split_feature": self.split_feature,
            "split_threshold": self.split_threshold,
            "leaf_value": self.leaf_value,
        }

    @classmethod
    def from_arrays(cls, arrays: Any) -> TreeModel:
        return cls(
            features=tuple(str(f) for f in arrays["features"]),
            base=float(arrays["base"]),
            split_feature=np.asarray(arrays["split_feature"], dtype=np.intp),
            split_threshold=np.asarray(arrays["split_threshold"], dtype=np.float64),
            leaf_value=np.asarray(arrays["leaf_value"], dtype=np.float64),
        )


def fit_trees(
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    features: tuple[str, ...],
    *,
    trees: int = 200,
    depth: int = 3,
    learning_rate: float = 0.1,
    l2: float = 1.0,
    bins: int = 32,
    min_hessian: float = 5.0,
    subsample: float = 0.8,
    seed: int = 0,
) -> TreeModel:
    """Boost ``trees`` complete trees of ``depth`` on (x, y in {0,1}, per-row weight)."""
    rng = np.random.default_rng(seed)
    n, width = x.shape
    edges = [
        np.unique(np.quantile(x[:, j], np.linspace(0, 1, bins + 1)[1:-1])) for j in range(width)
    ]
    binned = np.stack([np.searchsorted(e, x[:, j], side="right") for j, e in enumerate(edges)], 1)
    positive = float((y * weight).sum())
    base = float(np.log(positive / max(float(((1 - y) * weight).sum()), 1e-12)))
    score = np.full(n, base)
    inner = 2**depth - 1
    split_feature = np.zeros((trees, inner), dtype=np.intp)
    split_threshold = np.full((trees, inner), np.inf)
    leaf_value = np.zeros((trees, 2**depth))
    for t in range(trees):
        p = 1.0 / (1.0 + np.exp(-score))
        grad, hess = (p - y) * weight, p * (1 - p) * weight
        sample = rng.random(n) < subsample
        node = np.zeros(n, dtype=np.intp)
        for nid in range(inner):
            rows = (node == nid) & sample
            best_gain, best_feature, best_bin = 0.0, 0, -1
            g_all, h_all = grad[rows].sum(), hess[rows].sum()
            for j in range(width):
                g_left = np.cumsum(np.bincount(binned[rows, j], grad[rows], bins + 1))[:-1]
                h_left = np.cumsum(np.bincount(binned[rows, j], hess[rows], bins + 1))[:-1]
                g_right, h_right = g_all - g_left, h_all - h_left
                gain = np.where(
                    (h_left >= min_hessian) & (h_right >= min_hessian),
                    g_left**2 / (h_left + l2)
                    + g_right**2 / (h_right + l2)
                    - g_all**2 / (h_all + l2),
                    -1.0,
                )
                k = int(np.argmax(gain))
                if gain[k] > best_gain and k < len(edges[j]):
                    best_gain, best_feature, best_bin = float(gain[k]), j, k
            split_feature[t, nid] = best_feature
            if best_bin >= 0:  # x >= edge goes right; no useful split: all go left
                split_threshold[t, nid] = edges[best_feature][best_bin]
            right = x[:, best_feature] >= split_threshold[t, nid]
            node = np.where(node == nid, 2 * nid + 1 + right, node)
        leaf = node - inner
        for k in range(2**depth):
            rows = (leaf == k) & sample
            leaf_value[t, k] = -learning_rate * grad[rows].sum() / (hess[rows].sum() + l2)
        score += leaf_value[t, leaf]
    return TreeModel(features, base, split_feature, split_threshold, leaf_value)
