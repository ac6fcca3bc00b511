"""A learned answer verifier: P(this answer is acceptable | prompt, answer, model).

FrugalGPT's scorer idea on a budget: a logistic regression over the prompt's and the
answer's embeddings (and their product, which carries how well they match), the answer's
length and the answering model, trained by ``thrifty tune`` on recorded answers. An
answer is labelled acceptable when its recorded quality is within ``margin`` of the
reference (strongest) model's answer to the same prompt. Stored as one ``.npz`` file.

Cross-fitted like the router's predictor: one model per prompt group (a hash of the
prompt), each trained without its group, and a prompt is scored by its group's model.
A training answer is therefore never scored by a model that saw it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from thrifty.cascade.checks import Verdict, answer_message, register_check, text_of
from thrifty.embeddings import get_embedder
from thrifty.learned import load_cached, save_arrays
from thrifty.recordings.dataset import ReplayRecord
from thrifty.routing.predictor import FOLDS, fold_of
from thrifty.routing.text import prompt_text
from thrifty.tokens import count_text


class NotEnoughExamples(ValueError):
    """The training answers cannot teach a verifier (no texts, or one label only)."""


def _features(
    prompt: np.ndarray, answer: np.ndarray, tokens: np.ndarray, onehot: np.ndarray
) -> np.ndarray:
    length = np.log1p(tokens)[:, None] / 8.0
    return np.hstack([prompt, answer, prompt * answer * 10.0, length, onehot]).astype(np.float32)


class AnswerVerifier:
    def __init__(self, models: Sequence[str], weights: np.ndarray, bias: np.ndarray) -> None:
        self.models = list(models)
        self.weights = np.atleast_2d(weights).astype(np.float32)  # (groups, features)
        self.bias = np.atleast_1d(bias).astype(np.float32)

    def _onehot(self, models: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(models), len(self.models)), dtype=np.float32)
        for i, model in enumerate(models):
            if model in self.models:
                out[i, self.models.index(model)] = 1.0
        return out

    def _matrix(
        self,
        prompts: Sequence[str],
        answers: Sequence[str],
        tokens: Sequence[int],
        models: Sequence[str],
    ) -> np.ndarray:
        embed = get_embedder().embed_cached
        return _features(
            embed(prompts),
            embed(answers),
            np.asarray(tokens, dtype=np.float32),
            self._onehot(models),
        )

    def probabilities(
        self,
        prompts: Sequence[str],
        answers: Sequence[str],
        tokens: Sequence[int],
        models: Sequence[str],
    ) -> np.ndarray:
        """P(acceptable) per answer; ``prompts`` as :func:`prompt_text` gives them (the
        cross-fitting group is a hash of exactly that text)."""
        x = self._matrix(prompts, answers, tokens, models)
        groups = np.array([fold_of(p, len(self.bias)) for p in prompts])
        logits = np.einsum("ij,ij->i", x, self.weights[groups]) + self.bias[groups]
        return 1.0 / (1.0 + np.exp(-logits))

    @classmethod
    def fit(
        cls,
        records: Sequence[ReplayRecord],
        models: Sequence[str],
        reference_model: str,
        *,
        margin: float = 0.12,
        l2: float = 1e-2,
        steps: int = 400,
    ) -> AnswerVerifier:
        prompts, answers, tokens, answered_by, labels = [], [], [], [], []
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
                tokens.append(answer.output_tokens or count_text(answer.text, model).tokens)
                answered_by.append(model)
                labels.append(1.0 if answer.quality >= bar else 0.0)
        if len(set(labels)) < 2:
            found = "no graded answer texts" if not labels else f"only one label in {len(labels)}"
            raise NotEnoughExamples(
                f"the verifier needs both acceptable and unacceptable answers ({found})"
            )
        x = cls(models, np.zeros((1, 1)), np.zeros(1))._matrix(
            prompts, answers, tokens, answered_by
        )
        y = np.asarray(labels, dtype=np.float32)
        groups = np.array([fold_of(p) for p in prompts])
        fitted = [_logistic(x[groups != g], y[groups != g], l2, steps) for g in range(FOLDS)]
        return cls(models, np.stack([w for w, _ in fitted]), np.array([b for _, b in fitted]))

    def save(self, path: str | Path) -> Path:
        return save_arrays(path, models=np.array(self.models), weights=self.weights, bias=self.bias)

    @classmethod
    def load(cls, path: str | Path) -> AnswerVerifier:
        def build(data: Any) -> AnswerVerifier:
            return cls([str(m) for m in data["models"]], data["weights"], data["bias"])

        return load_cached(path, build, "verifier")


def _logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int) -> tuple[np.ndarray, float]:
    """Full-batch gradient descent on L2-regularised log loss."""
    w = np.zeros(x.shape[1], dtype=np.float32)
    mean = float(y.mean()) if len(y) else 0.5
    b = math.log((mean + 1e-3) / (1 - mean + 1e-3))
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        grad = p - y
        w -= 0.5 * (x.T @ grad / max(1, len(y)) + l2 * w)
        b -= 0.5 * float(grad.mean())
    return w, b


class VerifierCheck:
    """The ``verifier`` cascade check: score = the verifier's P(acceptable)."""

    name = "verifier"
    needs_logprobs = False
    needs_judge = False

    def __init__(self, verifier: AnswerVerifier) -> None:
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
