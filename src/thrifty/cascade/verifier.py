"""A learned answer verifier: P(this answer is acceptable | prompt, answer, model).

FrugalGPT's scorer idea on a budget, with the router's sparse logistic model
(``routing/linear.py``): the answer's hashed word 1–2-grams (tf-idf), the prompt's
(a separate block), the answer's shape signals (``answer_features.py``: refusals,
hedges, length against the prompt, cut-offs, repetition, missing code or numbers) and
the answering model, trained by ``thrifty tune`` on recorded answers. An answer is
labelled acceptable when its recorded quality is within ``margin`` of the reference
(strongest) model's answer to the same prompt. The L2 penalty is chosen from a grid by
the training answers' cross-fitted log-loss, and a final Platt scaling of those
cross-fitted scores calibrates the probability, so the tiers' thresholds mean what they
say (issue #19: the earlier embedding-only verifier's scores sat in 0.67–0.78, and every
threshold accepted all or nothing). Stored as one ``.npz`` file.

Cross-fitted like the router's predictor: one model per prompt group (a hash of the
prompt), each trained without its group, and a prompt is scored by its group's model.
A training answer is therefore never scored by a model that saw it. Files of the earlier
embedding verifier (no ``kind``) still load (:class:`EmbeddingVerifier`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from thrifty.cascade.answer_features import ANSWER_FEATURE_NAMES, answer_features
from thrifty.cascade.checks import Verdict, answer_message, register_check, text_of
from thrifty.learned import load_cached, save_arrays
from thrifty.recordings.dataset import ReplayRecord
from thrifty.routing.features import Featurizer, text_features, to_csr
from thrifty.routing.linear import SparseRows, _sigmoid
from thrifty.routing.predictor import FOLDS, fit_folds, fold_of
from thrifty.routing.text import prompt_text
from thrifty.tokens import count_text

KIND = "sparse-v2"
PROMPT_BASE = 1 << 22  # the prompt's slots, shifted past the answer's words and structure
EXTRA_BASE = 1 << 23  # the answer's shape signals
MODEL_BASE = EXTRA_BASE + 256  # one slot per answering model
L2_GRID = (0.5, 2.0, 8.0, 32.0)  # c: the penalty is c / training answers (as the router's)
ITERATIONS = 150


class NotEnoughExamples(ValueError):
    """The training answers cannot teach a verifier (no texts, or one label only)."""


def _examples(
    records: Sequence[ReplayRecord], models: Sequence[str], reference_model: str, margin: float
) -> tuple[list[str], list[str], list[str], list[float]]:
    """(prompts, answers, answering models, labels) of the graded answers with a text."""
    prompts, answers, answered_by, labels = [], [], [], []
    for record in records:
        reference = record.answers.get(reference_model)
        for model in models:
            answer = record.answers.get(model)
            if answer is None or answer.quality is None or answer.text is None:
                continue
            bar = (
                (reference.quality - margin)
                if reference and reference.quality is not None
                else 0.78
            )
            prompts.append(prompt_text(record.messages))
            answers.append(answer.text)
            answered_by.append(model)
            labels.append(1.0 if answer.quality >= bar else 0.0)
    return prompts, answers, answered_by, labels


def _platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(a, b) with σ(a·z + b) calibrated on ``logits`` (Newton steps, a tiny ridge)."""
    a, b = 1.0, 0.0
    for _ in range(25):
        p = _sigmoid(a * logits + b)
        r, w = p - labels, np.maximum(p * (1 - p), 1e-9)
        grad = np.array([(r * logits).sum() + 1e-3 * (a - 1), r.sum()])
        hess = np.array([[(w * logits**2).sum() + 1e-3, (w * logits).sum()],
                         [(w * logits).sum(), w.sum() + 1e-9]])  # fmt: skip
        a, b = np.array([a, b]) - np.linalg.solve(hess, grad)
    return float(a), float(b)


class AnswerVerifier:
    def __init__(
        self,
        models: Sequence[str],
        answer_words: Featurizer,
        prompt_words: Featurizer,
        extra_mean: np.ndarray,
        extra_std: np.ndarray,
        columns: np.ndarray,
        weights: np.ndarray,
        calibration: Sequence[float],
        l2_rows: float = math.nan,
    ) -> None:
        self.models = list(models)
        self.answer_words, self.prompt_words = answer_words, prompt_words
        self.extra_mean, self.extra_std = (
            extra_mean.astype(np.float64),
            extra_std.astype(np.float64),
        )
        self.columns = columns.astype(np.int64)
        self.weights = weights.astype(np.float32)  # (columns, groups)
        self.calibration = (float(calibration[0]), float(calibration[1]))
        self.l2_rows = l2_rows
        self.crossed: tuple[np.ndarray, np.ndarray] | None = None  # fit: (logits, labels)

    def _row(self, prompt: str, answer: str, model: str) -> tuple[np.ndarray, np.ndarray]:
        a_slots, a_values = self.answer_words.row(*text_features(answer), {})
        p_slots, p_values = self.prompt_words.row(*text_features(prompt), {})
        z = (answer_features(prompt, answer) - self.extra_mean) / self.extra_std
        slots = [a_slots, PROMPT_BASE + p_slots, EXTRA_BASE + np.arange(len(z))]
        values = [a_values, p_values, np.clip(z, -5, 5) / 2.0]
        if model in self.models:
            slots.append(np.array([MODEL_BASE + self.models.index(model)]))
            values.append(np.array([1.0]))
        return np.concatenate(slots), np.concatenate(values)

    def logits(
        self, prompts: Sequence[str], answers: Sequence[str], models: Sequence[str]
    ) -> np.ndarray:
        """Each answer's uncalibrated logit, by its prompt group's model."""
        out = np.zeros(len(prompts), dtype=np.float64)
        for i, (prompt, answer, model) in enumerate(zip(prompts, answers, models, strict=True)):
            slots, values = self._row(prompt, answer, model)
            where = np.minimum(np.searchsorted(self.columns, slots), len(self.columns) - 1)
            hit = self.columns[where] == slots
            group = fold_of(prompt, self.weights.shape[1])  # the model that never saw it
            out[i] = float(values[hit] @ self.weights[where[hit], group])
        return out

    def probabilities(
        self,
        prompts: Sequence[str],
        answers: Sequence[str],
        tokens: Sequence[int],
        models: Sequence[str],
    ) -> np.ndarray:
        """P(acceptable) per answer; ``prompts`` as :func:`prompt_text` gives them (the
        cross-fitting group is a hash of exactly that text). ``tokens``: unused (the
        answer's length comes from its text), kept for the earlier verifier's signature."""
        if not len(prompts):
            return np.zeros(0)
        a, b = self.calibration
        return _sigmoid(a * self.logits(prompts, answers, models) + b)

    @classmethod
    def fit(
        cls,
        records: Sequence[ReplayRecord],
        models: Sequence[str],
        reference_model: str,
        *,
        margin: float = 0.12,
        l2_rows: Sequence[float] = L2_GRID,
        iterations: int = ITERATIONS,
    ) -> AnswerVerifier:
        prompts, answers, answered_by, labels = _examples(records, models, reference_model, margin)
        if len(set(labels)) < 2:
            found = "no graded answer texts" if not labels else f"only one label in {len(labels)}"
            raise NotEnoughExamples(
                f"the verifier needs both acceptable and unacceptable answers ({found})"
            )
        a_parts = [text_features(t) for t in answers]
        unique_prompts = list(dict.fromkeys(prompts))
        p_parts = [text_features(t) for t in unique_prompts]
        answer_words = Featurizer.fit(
            [c for c, _ in a_parts], np.array([s for _, s in a_parts]), use_tags=False
        )
        prompt_words = Featurizer.fit(
            [c for c, _ in p_parts], np.array([s for _, s in p_parts]), use_tags=False
        )
        extras = np.array([answer_features(p, a) for p, a in zip(prompts, answers, strict=True)])
        verifier = cls(
            models, answer_words, prompt_words, extras.mean(axis=0), extras.std(axis=0) + 1e-6,
            np.zeros(0, np.int64), np.zeros((0, FOLDS)), (1.0, 0.0),
        )  # fmt: skip
        rows = [
            verifier._row(p, a, m) for p, a, m in zip(prompts, answers, answered_by, strict=True)
        ]
        x = SparseRows(*to_csr(rows))
        y = np.asarray(labels, dtype=np.float64)[:, None]
        folds = np.array([fold_of(p) for p in prompts], dtype=np.int64)
        weights, crossed, chosen, _ = fit_folds(
            x, y, np.ones_like(y, dtype=bool), folds, list(l2_rows), iterations, None, None
        )
        verifier.columns, verifier.weights = x.columns.astype(np.int64), weights.astype(np.float32)
        verifier.calibration = _platt(crossed[:, 0].astype(np.float64), y[:, 0])
        verifier.l2_rows = chosen
        verifier.crossed = (crossed[:, 0].astype(np.float64), y[:, 0])  # for reports
        return verifier

    def save(self, path: str | Path) -> Path:
        answer = {f"answer_{k}": v for k, v in self.answer_words.arrays().items()}
        prompt = {f"prompt_{k}": v for k, v in self.prompt_words.arrays().items()}
        return save_arrays(
            path, kind=np.array(KIND), models=np.array(self.models), columns=self.columns,
            weights=self.weights, calibration=np.array(self.calibration),
            extra_mean=self.extra_mean, extra_std=self.extra_std,
            extra_names=np.array(ANSWER_FEATURE_NAMES), l2_rows=np.array(self.l2_rows),
            **answer, **prompt,
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> AnswerVerifier | EmbeddingVerifier:
        def build(data: Any) -> AnswerVerifier | EmbeddingVerifier:
            if "kind" not in data:  # the earlier embedding verifier
                return EmbeddingVerifier([str(m) for m in data["models"]], data["weights"],
                                         data["bias"])  # fmt: skip
            if str(data["kind"]) != KIND:
                raise ValueError(f"{path}: a verifier of an unknown kind; run thrifty tune again")
            if len(data["extra_names"]) != len(ANSWER_FEATURE_NAMES):
                raise ValueError(f"{path}: a verifier of another version; run thrifty tune again")

            def words(prefix: str) -> Featurizer:
                return Featurizer.from_arrays(
                    {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}
                )

            return cls(
                [str(m) for m in data["models"]], words("answer_"), words("prompt_"),
                data["extra_mean"], data["extra_std"], data["columns"], data["weights"],
                data["calibration"], float(data["l2_rows"]),
            )  # fmt: skip

        return load_cached(path, build, "verifier")


def _embedding_features(
    prompt: np.ndarray, answer: np.ndarray, tokens: np.ndarray, onehot: np.ndarray
) -> np.ndarray:
    length = np.log1p(tokens)[:, None] / 8.0
    return np.hstack([prompt, answer, prompt * answer * 10.0, length, onehot]).astype(np.float32)


class EmbeddingVerifier:
    """The earlier verifier (a dense logistic on the prompt's and answer's static
    embeddings), kept so its files still load; ``thrifty tune`` now fits
    :class:`AnswerVerifier`."""

    def __init__(self, models: Sequence[str], weights: np.ndarray, bias: np.ndarray) -> None:
        self.models = list(models)
        self.weights = np.atleast_2d(weights).astype(np.float32)  # (groups, features)
        self.bias = np.atleast_1d(bias).astype(np.float32)

    def probabilities(
        self,
        prompts: Sequence[str],
        answers: Sequence[str],
        tokens: Sequence[int],
        models: Sequence[str],
    ) -> np.ndarray:
        from thrifty.embeddings import get_embedder

        onehot = np.zeros((len(models), len(self.models)), dtype=np.float32)
        for i, model in enumerate(models):
            if model in self.models:
                onehot[i, self.models.index(model)] = 1.0
        embed = get_embedder().embed_cached
        x = _embedding_features(
            embed(prompts), embed(answers), np.asarray(tokens, dtype=np.float32), onehot
        )
        groups = np.array([fold_of(p, len(self.bias)) for p in prompts])
        logits = np.einsum("ij,ij->i", x, self.weights[groups]) + self.bias[groups]
        return 1.0 / (1.0 + np.exp(-logits))


class VerifierCheck:
    """The ``verifier`` cascade check: score = the verifier's P(acceptable)."""

    name = "verifier"
    needs_logprobs = False
    needs_judge = False

    def __init__(self, verifier: AnswerVerifier | EmbeddingVerifier) -> None:
        self._verifier = verifier

    async def __call__(
        self, request: dict[str, Any], response: dict[str, Any], judge: Any
    ) -> Verdict | None:
        answer = text_of(answer_message(response).get("content"))
        if not answer:
            return None  # the heuristics check owns empty answers
        usage = response.get("usage") or {}
        model = str(response.get("model") or "")
        tokens = int(usage.get("completion_tokens") or count_text(answer, model).tokens)
        prompt = prompt_text(request.get("messages") or [])  # the text the groups hashed
        p = float(self._verifier.probabilities([prompt], [answer], [tokens], [model])[0])
        return Verdict(self.name, p, f"P(acceptable)={p:.2f}")


def _verifier_factory(options: Mapping[str, Any]) -> VerifierCheck:
    path = options.get("path")
    if not isinstance(path, str):
        raise ValueError(
            "the verifier check needs cascade.verifier (a file trained by thrifty tune)"
        )
    return VerifierCheck(AnswerVerifier.load(path))


register_check("verifier", _verifier_factory, replace=True)
