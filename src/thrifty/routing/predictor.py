"""Predicted answer quality per model, from the nearest recorded prompts.

Trained by ``thrifty tune`` on replay data: each training prompt's embedding, and each
model's recorded quality and answer length for it. A new prompt's prediction for model M
is the similarity-weighted mean over its k nearest training prompts that M answered
(RouteLLM's similarity-weighted idea, without a trained ranking model). Stored as one
``.npz`` file, loaded once per process.

Cross-fitting: every prompt falls in one of ``FOLDS`` groups by a hash of its text, and a
prediction only uses neighbours from the other groups. A training prompt is therefore
never predicted from its own recorded answers (which would make any threshold look
perfect to the tuner), and a new prompt loses a fifth of the neighbours, no more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thrifty.embeddings import get_embedder
from thrifty.learned import load_cached, save_arrays
from thrifty.recordings.dataset import ReplayRecord
from thrifty.routing.text import prompt_text

FOLDS = 5


def fold_of(text: str, folds: int = FOLDS) -> int:
    """The cross-fitting group of a prompt (stable across processes)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % folds


@dataclass(frozen=True, slots=True)
class Prediction:
    quality: float
    output_tokens: float
    support: float  # how much neighbour weight backed this prediction


class QualityPredictor:
    def __init__(
        self,
        models: Sequence[str],
        embeddings: np.ndarray,
        quality: np.ndarray,
        output_tokens: np.ndarray,
        folds: np.ndarray,
        k: int = 10,
    ) -> None:
        self.models = list(models)
        self.folds = folds.astype(np.int8)
        self.embeddings = embeddings.astype(np.float32)
        self.quality = quality.astype(np.float32)
        self.output_tokens = output_tokens.astype(np.float32)
        self.k = k

    @classmethod
    def fit(
        cls, records: Sequence[ReplayRecord], models: Sequence[str], k: int = 10
    ) -> QualityPredictor:
        """Learn from recorded answers that have a quality; others are left out."""
        from thrifty.tokens import count_text

        texts = [prompt_text(r.messages) for r in records]
        embeddings = get_embedder().embed(texts)
        quality = np.full((len(records), len(models)), np.nan, dtype=np.float32)
        tokens = np.full_like(quality, np.nan)
        for i, record in enumerate(records):
            for j, model in enumerate(models):
                answer = record.answers.get(model)
                if answer is None or answer.quality is None:
                    continue
                quality[i, j] = answer.quality
                if answer.output_tokens is not None:
                    tokens[i, j] = answer.output_tokens
                elif answer.text is not None:
                    tokens[i, j] = count_text(answer.text, model).tokens
        folds = np.array([fold_of(t) for t in texts], dtype=np.int8)
        return cls(models, embeddings, quality, tokens, folds, k)

    def save(self, path: str | Path) -> Path:
        return save_arrays(
            path,
            models=np.array(self.models),
            embeddings=self.embeddings.astype(np.float16),
            quality=self.quality,
            output_tokens=self.output_tokens,
            folds=self.folds,
            k=self.k,
        )

    @classmethod
    def load(cls, path: str | Path) -> QualityPredictor:
        """Load (and cache per file version) a saved predictor."""

        def build(data: Any) -> QualityPredictor:
            return cls(
                [str(m) for m in data["models"]],
                data["embeddings"],
                data["quality"],
                data["output_tokens"],
                data["folds"],
                int(data["k"]),
            )

        return load_cached(path, build, "predictor")

    def predict(self, embedding: np.ndarray, text: str) -> dict[str, Prediction]:
        """Predictions for every model the neighbours (outside ``text``'s group) have data for."""
        similarity = self.embeddings @ embedding
        similarity = np.where(self.folds == fold_of(text), -np.inf, similarity)
        k = min(self.k, len(similarity))
        nearest = np.argpartition(-similarity, k - 1)[:k]
        nearest = nearest[np.isfinite(similarity[nearest])]
        if len(nearest) == 0:
            return {}
        weights = (np.maximum(similarity[nearest], 0.0) + 1e-6)[:, None]
        quality = self.quality[nearest]  # (k, models)
        tokens = self.output_tokens[nearest]
        known_q, known_t = ~np.isnan(quality), ~np.isnan(tokens)
        support = (weights * known_q).sum(axis=0)
        mean_q = (weights * np.nan_to_num(quality)).sum(axis=0) / np.maximum(support, 1e-12)
        support_t = (weights * known_t).sum(axis=0)
        mean_t = np.where(
            support_t > 0,
            (weights * np.nan_to_num(tokens)).sum(axis=0) / np.maximum(support_t, 1e-12),
            np.nan,
        )
        out: dict[str, Prediction] = {}
        for j, model in enumerate(self.models):
            if known_q[:, j].any():
                out[model] = Prediction(float(mean_q[j]), float(mean_t[j]), float(support[j]))
        return out
