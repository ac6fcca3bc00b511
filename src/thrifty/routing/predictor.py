"""Predicted answer quality per model, relative to the reference model: a learned model.

Trained by ``thrifty tune`` on replay data. For every candidate model M other than the
reference R, a logistic regression over the prompt's features (``features.py``: hashed
word 1–2-grams with tf-idf, generic structure, the request's tags, and optionally the
shipped static embedding of the prompt) predicts M's
quality *relative to R's* on that prompt: the soft label ``min(1, q_M / q_R)`` (1 when
R scored 0). For right/wrong grades that is P(M is as good as R). R itself is 1.0.
A decision costs one sparse dot product per model (no scan over the training prompts),
so it takes the same time whatever the training size.

Cross-fitting: every training prompt falls in one of ``FOLDS`` groups by a hash of its
text, and one model per group is trained without it. The file keeps each training
prompt's out-of-group prediction (by the hash of its text), so when the tuner replays
the training rows it sees honest predictions (never one fitted on the row's own answer:
that would make any threshold look perfect). Any other prompt is scored by the mean of
the group models (one linear model). Stored as one ``.npz``, loaded once per process.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thrifty.learned import load_cached, save_arrays
from thrifty.recordings.dataset import ReplayRecord
from thrifty.routing.features import Featurizer, embeddings_of, text_features, to_csr
from thrifty.routing.linear import SparseRows, fit_logistic
from thrifty.routing.text import prompt_text

FOLDS = 5
CACHE_SIZE = 50_000  # predictions kept per process (the tuner replays each prompt often)
Progress = Callable[[str], None]


def fold_of(text: str, folds: int = FOLDS) -> int:
    """The cross-fitting group of a prompt (stable across processes)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % folds


def text_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


@dataclass(frozen=True, slots=True)
class Prediction:
    quality: float  # relative to the reference model's (1.0 = as good)
    output_tokens: float
    support: float  # training prompts this model had a graded answer for


def _labels(
    records: Sequence[ReplayRecord], models: Sequence[str], reference: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft labels, which rows have one, and output tokens: (rows, models) each."""
    from thrifty.tokens import count_text

    n, m = len(records), len(models)
    labels, known = np.zeros((n, m)), np.zeros((n, m), dtype=bool)
    tokens = np.full((n, m), np.nan)
    for i, record in enumerate(records):
        ref = record.answers.get(reference)
        ref_q = ref.quality if ref is not None else None
        for j, model in enumerate(models):
            answer = record.answers.get(model)
            if answer is None:
                continue
            if answer.output_tokens is not None:
                tokens[i, j] = answer.output_tokens
            elif answer.text is not None:
                tokens[i, j] = count_text(answer.text, model).tokens
            if answer.quality is None or ref_q is None:
                continue
            known[i, j] = True
            labels[i, j] = 1.0 if ref_q <= 0 else min(1.0, answer.quality / ref_q)
    return labels, known, tokens


class QualityPredictor:
    def __init__(
        self,
        reference: str,
        models: Sequence[str],
        featurizer: Featurizer,
        columns: np.ndarray,
        weights: np.ndarray,
        output_tokens: np.ndarray,
        support: np.ndarray,
        train_keys: np.ndarray,
        train_scores: np.ndarray,
    ) -> None:
        self.reference = reference
        self.models = list(models)  # the learned heads (every model but the reference)
        self.featurizer = featurizer
        self.columns = columns.astype(np.int64)
        self.weights = weights.astype(np.float32)  # (columns + embedding dims, models)
        self.dense_dim = len(self.weights) - len(self.columns)  # 0: no embedding block
        self.output_tokens = output_tokens.astype(np.float64)  # per model, reference last
        self.support = support.astype(np.float64)
        order = np.argsort(train_keys)
        self.train_keys = train_keys[order].astype(np.int64)
        self.train_scores = train_scores[order].astype(np.float32)
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Prediction]] = {}

    @classmethod
    def fit(
        cls,
        records: Sequence[ReplayRecord],
        models: Sequence[str],
        reference: str,
        *,
        use_tags: bool = True,
        use_embedding: bool = False,
        l2: float = 1e-3,
        iterations: int = 60,
        progress: Progress | None = None,
    ) -> QualityPredictor:
        """Learn from the recorded answers that have a quality (others are left out)."""
        say = progress or (lambda _: None)
        heads = [m for m in models if m != reference]
        texts = [prompt_text(r.messages) for r in records]
        say(f"features of {len(texts)} prompts")
        parts = [text_features(t) for t in texts]
        counts = [c for c, _ in parts]
        shapes = np.array([s for _, s in parts]).reshape(len(texts), -1)
        featurizer = Featurizer.fit(counts, shapes, use_tags)
        rows = [
            featurizer.row(c, s, r.tags) for c, s, r in zip(counts, shapes, records, strict=True)
        ]
        dense = embeddings_of(texts) if use_embedding and rows else None
        x = SparseRows(*to_csr(rows), dense=dense) if rows else None
        del rows, parts, counts
        labels, known, tokens = _labels(records, [*heads, reference], reference)
        folds = np.array([fold_of(t) for t in texts], dtype=np.int64)
        n_heads = len(heads)
        if x is None or n_heads == 0:
            weights = np.zeros((0, n_heads), dtype=np.float32)
            columns = np.zeros(0, dtype=np.int64)
            scores = np.zeros((len(texts), n_heads), dtype=np.float32)
        else:
            say(f"fitting {n_heads} model(s) × {FOLDS} folds on {len(texts)} prompts")
            # head (fold f, model j) = column f * n_heads + j; trained without fold f
            target = np.tile(labels[:, :n_heads], FOLDS)
            row_w = np.tile(known[:, :n_heads].astype(np.float64), FOLDS)
            for f in range(FOLDS):
                row_w[folds == f, f * n_heads : (f + 1) * n_heads] = 0.0
            w = fit_logistic(x, target, row_w, l2=l2, iterations=iterations)
            logits = x.dot(w).reshape(len(texts), FOLDS, n_heads)
            scores = logits[np.arange(len(texts)), folds].astype(np.float32)
            weights = w.reshape(x.width, FOLDS, n_heads).mean(axis=1)
            columns = x.columns
        mean_tokens = np.array(
            [np.nanmean(col) if np.isfinite(col).any() else np.nan for col in tokens.T]
        )
        keys = np.array([text_key(t) for t in texts], dtype=np.int64)
        return cls(
            reference, heads, featurizer, columns, weights, mean_tokens,
            known.sum(axis=0).astype(np.float64), keys, scores,
        )  # fmt: skip

    def save(self, path: str | Path) -> Path:
        return save_arrays(
            path,
            kind=np.array("linear-v1"),
            reference=np.array(self.reference),
            models=np.array(self.models),
            columns=self.columns,
            weights=self.weights.astype(np.float16),
            output_tokens=self.output_tokens,
            support=self.support,
            train_keys=self.train_keys,
            train_scores=self.train_scores.astype(np.float16),
            **self.featurizer.arrays(),
        )

    @classmethod
    def load(cls, path: str | Path) -> QualityPredictor:
        """Load (and cache per file version) a saved predictor."""

        def build(data: Any) -> QualityPredictor:
            if "kind" not in data:
                raise ValueError(
                    f"{path}: a predictor from an older Thrifty (nearest neighbours); "
                    "run `thrifty tune` again to train the learned one"
                )
            return cls(
                str(data["reference"]),
                [str(m) for m in data["models"]],
                Featurizer.from_arrays(data),
                data["columns"],
                data["weights"],
                data["output_tokens"],
                data["support"],
                data["train_keys"],
                data["train_scores"],
            )

        return load_cached(path, build, "predictor")

    def logits(self, text: str, tags: Mapping[str, str] | None = None) -> np.ndarray:
        """One logit per learned model: out-of-group for a training prompt, else the mean model."""
        key = text_key(text)
        at = int(np.searchsorted(self.train_keys, key))
        if at < len(self.train_keys) and self.train_keys[at] == key:
            return self.train_scores[at].astype(np.float64)
        counts, shape = text_features(text)
        slots, values = self.featurizer.row(counts, shape, tags or {})
        out = np.zeros(len(self.models), dtype=np.float32)
        if len(self.columns):
            where = np.minimum(np.searchsorted(self.columns, slots), len(self.columns) - 1)
            hit = self.columns[where] == slots
            out += values[hit].astype(np.float32) @ self.weights[where[hit]]
        if self.dense_dim:
            from thrifty.embeddings import get_embedder

            out += get_embedder().embed_one(text) @ self.weights[len(self.columns) :]
        return out

    def predict(self, text: str, tags: Mapping[str, str] | None = None) -> dict[str, Prediction]:
        """A prediction for the reference and every learned model."""
        cache_key = (text, tuple(sorted((tags or {}).items())))
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        relative = 1.0 / (1.0 + np.exp(-self.logits(text, tags)))
        out = {
            model: Prediction(float(relative[j]), float(self.output_tokens[j]), self.support[j])
            for j, model in enumerate(self.models)
        }
        out[self.reference] = Prediction(1.0, float(self.output_tokens[-1]), math.inf)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[cache_key] = out
        return out
