"""How long each model's answer to a prompt will be: the other half of a request's cost.

Routing trades quality for dollars, and most of a strong model's bill is its output: on
arena_bench_v1 gpt-4-1106-preview's answers run from ~260 to ~1,000 tokens (5th to 95th
percentile) and the prompt asks for that (an essay, a program, a one-word fact). Routing
the long answers to a cheap model saves several times more per request than routing the
short ones at the same risk, so the router's expected cost uses a per-prompt length.

Answer lengths agree across models (on arena the mean over the other models' log length
ranks gpt-4-1106's at Spearman 0.79), so one *length demand* per prompt is learned from
every model's recorded answers: the target is the mean over models of ``log(1 + tokens)``
minus that model's mean. A ridge regression over the quality predictor's own features
predicts it (cross-fitted in the same folds, the penalty chosen by the cross-fitted
squared error); a model's expected tokens are then ``exp(base_m + demand)``, ``base_m``
set so that the mean over the training rows equals the model's recorded mean (costs are
linear in tokens, so the mean is what must be right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from thrifty.routing.linear import SparseRows, fit_least_squares
from thrifty.routing.ranking import rank_correlation

# The penalty's grid: c / (rows with a length), as for the quality heads; chosen per fit
# by the cross-fitted squared error (one solve for all of them).
LENGTH_L2_ROWS = (1.0, 4.0, 16.0)
LENGTH_ITERATIONS = 100
# The length model learns from at most this many rows (a seeded sample; the rest are
# predicted by the sampled rows' model, which never saw them): a length demand is a
# few strong cues, and on 10,000 MMLU prompts with varying lengths the full fit took
# 13.6 s against the quality heads' 2.9 s, six times per tune (on 1,000 rows: ~1.4 s).
LENGTH_ROWS = 1_000


@dataclass(frozen=True, slots=True)
class LengthModel:
    weights: np.ndarray  # (width,) over the predictor's columns then its dense block
    base: np.ndarray  # (models,) log scale of each model's tokens; nan: never recorded
    train_demand: np.ndarray  # (rows,) each training prompt's cross-fitted demand
    l2_rows: float  # the penalty chosen (nan: nothing to fit)
    rank_correlation: float | None  # cross-fitted demand vs the reference's length

    @classmethod
    def flat(cls, width: int, base: np.ndarray, rows: int) -> LengthModel:
        """Every prompt expects each model's mean (``base``: log of it): nothing learned."""
        return cls(np.zeros(width, np.float32), base, np.zeros(rows), math.nan, None)


def demand_targets(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each row's length demand, whether it has one) from tokens (rows, models), nan
    where a model has no recorded answer."""
    logs = np.log1p(np.where(np.isfinite(tokens), np.maximum(tokens, 0.0), np.nan))
    seen = np.isfinite(logs)
    totals, counted = np.where(seen, logs, 0.0).sum(axis=0), seen.sum(axis=0)
    means = totals / np.maximum(counted, 1)
    centred = np.where(seen, logs - means, 0.0)
    counts = seen.sum(axis=1)
    return centred.sum(axis=1) / np.maximum(counts, 1), counts > 0


def fit_lengths(
    x: SparseRows, tokens: np.ndarray, folds: np.ndarray, fold_count: int
) -> LengthModel:
    """The length model of ``tokens`` (rows, models; nan = unknown), cross-fitted by
    ``folds`` (each row's group of ``fold_count``)."""
    n = len(tokens)
    target, has = demand_targets(tokens)
    if has.sum() < 2 * fold_count or np.ptp(target[has]) < 1e-9:
        # too few lengths to learn from, or all alike (MMLU's one-letter answers)
        return LengthModel.flat(x.width, _bases(tokens, np.zeros(n)), n)
    learn = np.flatnonzero(has)
    if len(learn) > LENGTH_ROWS:
        learn = np.sort(np.random.default_rng(0).choice(learn, LENGTH_ROWS, replace=False))
    part = x.take(learn) if len(learn) < n else x
    weights = np.ones((len(learn), fold_count))
    for f in range(fold_count):
        weights[folds[learn] == f, f] = 0.0
    weights = np.tile(weights, len(LENGTH_L2_ROWS))
    penalty = np.repeat(np.array(LENGTH_L2_ROWS), fold_count) / len(learn)
    targets = np.repeat(target[learn, None], weights.shape[1], axis=1)
    w = fit_least_squares(part, targets, weights, l2=penalty, iterations=LENGTH_ITERATIONS)
    fitted = part.dot(w).reshape(len(learn), len(LENGTH_L2_ROWS), fold_count)
    cross = fitted[np.arange(len(learn)), :, folds[learn]]  # each row's out-of-fold value
    errors = ((cross - target[learn, None]) ** 2).mean(axis=0)
    best = int(np.argmin(errors))
    chosen = w[:, best * fold_count : (best + 1) * fold_count].mean(axis=1, keepdims=True)
    if part is not x:
        chosen = x.widen(part, chosen)
    demand = x.dot(chosen)[:, 0].astype(np.float64)  # rows outside the sample: never seen
    demand[learn] = cross[:, best]
    return LengthModel(
        chosen[:, 0].astype(np.float32),
        _bases(tokens, demand),
        demand,
        LENGTH_L2_ROWS[best],
        _reference_correlation(demand, tokens[:, -1]),
    )


def _bases(tokens: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Each model's log scale: its mean recorded tokens over the mean of exp(demand) on
    the same rows (nan for a model with no recorded length)."""
    out = np.full(tokens.shape[1], np.nan)
    for j, column in enumerate(tokens.T):
        seen = np.isfinite(column)
        if seen.any():
            spread = float(np.exp(demand[seen]).mean())
            out[j] = math.log(max(float(column[seen].mean()), 1.0) / spread)
    return out


def _reference_correlation(demand: np.ndarray, reference: np.ndarray) -> float | None:
    """How well the cross-fitted demand ranks the reference model's recorded lengths."""
    seen = np.isfinite(reference)
    return rank_correlation(demand[seen], reference[seen])


def expected_tokens(base: np.ndarray, demand: float) -> np.ndarray:
    """Each model's expected output tokens for a prompt of this ``demand`` (nan: unknown)."""
    return np.exp(base + demand)
