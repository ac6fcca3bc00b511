"""Predicted answer quality per model, relative to the reference model: a learned model.

Trained by ``thrifty tune`` on replay data. For every candidate model M other than the
reference R, a logistic regression over the prompt's features (``features.py``: hashed
word 1–2-grams with tf-idf, generic structure, the request's tags, and optionally a
sentence embedding of the prompt, ``encoders.py``) predicts M's
quality *relative to R's* on that prompt: the soft label ``min(1, q_M / q_R)`` (1 when
R scored 0). For right/wrong grades that is P(M is as good as R). R itself is 1.0.
With a prior (``prior.py``), each head starts from the prior's logit for M's price tier
(an offset the fit corrects; the L2 penalty shrinks towards the prior), or from nothing:
on fewer than ``PRIOR_CHOICE_ROWS`` labelled rows a head, the fit keeps the prior (for
every model at once) only when the cross-fitted log-loss, summed over the models, says it
helps on these rows (``PRIOR_SCALES``), since on traffic unlike the prior's data it pulls
the wrong way.
Each model's expected answer length for the prompt comes from a length model fitted
beside the heads (``lengths.py``), one more column of the same product: the router's
expected cost follows the prompt (an essay, a one-word fact), not the model's mean.
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

import dataclasses
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thrifty.learned import load_cached, save_arrays
from thrifty.recordings.dataset import ReplayRecord
from thrifty.routing.encoders import embed_many, embed_one
from thrifty.routing.features import Featurizer, text_features, to_csr
from thrifty.routing.lengths import LengthModel, expected_tokens, fit_lengths
from thrifty.routing.linear import SparseRows, fit_logistic
from thrifty.routing.text import prompt_text

FOLDS = 5
# The solver's settings, chosen on half A only of routellm_mmlu and arena_bench_v1 by
# the cross-fitted log-loss (``bench/routing_fit_select.py``; the least summed regret
# over both sets, one rule for every set): an L2 penalty of L2_ROWS / (the head's
# labelled rows), i.e. a fixed prior on the weights against a mean loss (MMLU's 5.5k rows
# a head: ~3e-4; arena's ~110: ~1e-2), and as many accelerated steps as the 10,000-prompt
# tune budget affords (200 would double the fits' share of it).
L2_ROWS = 1.5
# More values: the fit chooses among them by the same criterion, but each costs a fit's
# time (three took the 10,000-prompt tune from 71 s to 147 s on the loaded machine).
L2_GRID = (L2_ROWS,)
ITERATIONS = 100
# How much of the prior's logit each head starts from, chosen with the L2 penalty by the
# cross-fitted log-loss: 0 drops it (traffic unlike the public sets it was trained on).
# Each value costs a fit, so the choice is made below PRIOR_CHOICE_ROWS labelled rows a
# head, where the prior weighs most and a fit is cheap; above it the prior is kept (the
# 10,000-prompt tune would take ~8 s more of its 60 s budget on this machine).
PRIOR_SCALES = (0.0, 1.0)
PRIOR_CHOICE_ROWS = 5_000
CACHE_SIZE = 50_000  # predictions kept per process (the tuner replays each prompt often)
Progress = Callable[[str], None]


def resolve_prior(saved: str) -> Path:
    """A prior path as saved in a predictor: ``shipped`` is the packaged file."""
    from thrifty.routing.prior import SHIPPED

    return SHIPPED if saved == "shipped" else Path(saved)


def fold_of(text: str, folds: int = FOLDS) -> int:
    """The cross-fitting group of a prompt (stable across processes)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % folds


def text_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


@dataclass(frozen=True, slots=True)
class Prediction:
    quality: float  # relative to the reference model's (1.0 = as good)
    output_tokens: float  # expected for this prompt (nan: the model's length unknown)
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


def fit_folds(
    x: SparseRows,
    labels: np.ndarray,
    known: np.ndarray,
    folds: np.ndarray,
    grid: Sequence[float],
    iterations: int,
    offset: np.ndarray | None,
    l2: float | None,
    scales: Sequence[float] = (1.0,),
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(weights (width, FOLDS·heads), cross-fitted logits (rows, heads), the chosen ``c``
    and prior scale).

    One solve for every (``c``, prior scale, fold, model): head ``(g, f, j)`` is model j
    trained without fold f at the g-th pair: the penalty ``c`` / its labelled rows, and
    ``scale`` × ``offset`` as its starting point. Each pair gives every training prompt
    an out-of-fold prediction; the pair with the lowest weighted log-loss of those
    (against the soft labels, over every model) is kept: it is chosen on the training
    rows' own cross-fitted predictions, never on held-out rows.
    """
    n, n_heads = labels.shape
    pairs = [(c, s) for c in grid for s in (scales if offset is not None else (1.0,))]
    per_grid = FOLDS * n_heads
    target = np.tile(labels, FOLDS * len(pairs))
    row_w = np.tile(known.astype(np.float64), FOLDS)
    for f in range(FOLDS):
        row_w[folds == f, f * n_heads : (f + 1) * n_heads] = 0.0
    row_w = np.tile(row_w, len(pairs))
    rows = np.maximum(row_w.sum(axis=0), 1.0)
    cs = np.array([c for c, _ in pairs], dtype=np.float64)
    penalty = np.repeat(cs, per_grid) / rows if l2 is None else l2
    tiled = (
        None
        if offset is None
        else np.concatenate([s * np.tile(offset, FOLDS) for _, s in pairs], axis=1)
    )
    w = fit_logistic(x, target, row_w, l2=penalty, iterations=iterations, offset=tiled)
    logits = x.dot(w).reshape(n, len(pairs), FOLDS, n_heads)[np.arange(n), :, folds]
    if offset is not None:
        start = np.array([s for _, s in pairs], dtype=np.float32)
        logits = logits + start[None, :, None] * offset[:, None, :].astype(np.float32)
    losses = [log_loss(logits[:, g], labels, known) for g in range(len(pairs))]
    best = int(np.argmin(losses))
    chosen = w[:, best * per_grid : (best + 1) * per_grid]
    c, scale = pairs[best]
    return chosen, logits[:, best].astype(np.float32), float(c), float(scale)


def log_loss(logits: np.ndarray, labels: np.ndarray, known: np.ndarray) -> float:
    """Mean cross-entropy of ``logits`` against soft ``labels`` on the ``known`` cells."""
    z = logits.astype(np.float64)
    loss = np.logaddexp(0.0, z) - labels * z  # −y·log σ(z) − (1−y)·log(1−σ(z))
    return float(loss[known].mean()) if known.any() else 0.0


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
        encoder: str = "none",
        prior: QualityPredictor | None = None,
        prior_path: str = "",
        tiers: Sequence[int] = (),
        prior_scale: float = 1.0,
        lengths: LengthModel | None = None,
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
        # Answer lengths (``lengths.py``); without a length model (an older file, the
        # prior alone) every prompt expects each model's mean length.
        self.lengths = (
            dataclasses.replace(lengths, train_demand=lengths.train_demand[order])
            if lengths is not None
            else LengthModel.flat(  # nan stays nan: the model's length unknown
                len(self.weights), np.log(np.maximum(self.output_tokens, 1.0)), len(train_keys)
            )
        )  # its training demands in the order of ``train_keys``, like ``train_scores``
        # One product gives every head's logit and the length demand (last column).
        self._dot_weights = np.hstack([self.weights, self.lengths.weights[:, None]])
        self._train_rows = np.hstack(
            [self.train_scores, self.lengths.train_demand[:, None].astype(np.float32)]
        )
        self.encoder = encoder if self.dense_dim else "none"
        self.prior, self.prior_path = prior, prior_path
        self.tiers = np.asarray(tiers, dtype=np.int64)  # each head's column in the prior
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Prediction]] = {}
        self.l2_rows = math.nan  # the L2 rule the fit chose (nan: not fitted here)
        self.prior_scale = prior_scale  # the share of the prior's logit each head starts from

    @classmethod
    def fit(
        cls,
        records: Sequence[ReplayRecord],
        models: Sequence[str],
        reference: str,
        *,
        use_tags: bool = True,
        use_words: bool = True,
        encoder: str = "none",
        prior: QualityPredictor | None = None,
        prior_path: str = "",
        tiers: Sequence[int] = (),
        embed_cache: Path | None = None,
        l2: float | None = None,
        l2_rows: float | Sequence[float] | None = None,
        prior_scales: Sequence[float] | None = None,
        iterations: int = ITERATIONS,
        progress: Progress | None = None,
    ) -> QualityPredictor:
        """Learn from the recorded answers that have a quality (others are left out).

        ``encoder``: ``none``, ``static`` or ``minilm`` (a dense block of the prompt's
        embedding; ``embed_cache`` keeps the vectors on disk). ``prior`` with ``tiers``
        (the prior's head for each model in ``models`` but the reference, in order): the
        fit starts from the prior's prediction times a scale from ``prior_scales``
        (default ``PRIOR_SCALES``; 0: the prior is dropped; chosen below
        ``PRIOR_CHOICE_ROWS`` labelled rows a head, else 1). The L2 penalty is ``c``
        over each head's labelled rows, ``c`` chosen from ``l2_rows`` (default
        ``L2_GRID``), with the scale, by the cross-fitted log-loss (:func:`fit_folds`);
        ``l2``: a fixed penalty instead."""
        say = progress or (lambda _: None)
        heads = [m for m in models if m != reference]
        texts = [prompt_text(r.messages) for r in records]
        say(f"features of {len(texts)} prompts")
        parts = [text_features(t) for t in texts]
        counts = [c for c, _ in parts]
        shapes = np.array([s for _, s in parts]).reshape(len(texts), -1)
        featurizer = Featurizer.fit(counts, shapes, use_tags, use_words)
        rows = [
            featurizer.row(c, s, r.tags) for c, s, r in zip(counts, shapes, records, strict=True)
        ]
        if encoder != "none" and rows:
            say(f"embedding {len(texts)} prompts ({encoder})")
        dense = embed_many(texts, encoder, embed_cache) if encoder != "none" and rows else None
        x = SparseRows(*to_csr(rows), dense=dense) if rows else None
        del rows, parts, counts
        labels, known, tokens = _labels(records, [*heads, reference], reference)
        folds = np.array([fold_of(t) for t in texts], dtype=np.int64)
        n_heads = len(heads)
        head_tiers = list(tiers) if prior is not None else []
        offset = prior.logits_many(texts)[:, head_tiers] if prior is not None and n_heads else None
        if x is None or n_heads == 0:  # nothing to learn quality from (lengths may be)
            weights = np.zeros((0 if x is None else x.width, n_heads), dtype=np.float32)
            columns = np.zeros(0, dtype=np.int64) if x is None else x.columns
            scores = np.zeros((len(texts), n_heads), dtype=np.float32)
            chosen, scale = math.nan, 1.0
        else:
            grid = (
                [math.nan]  # a fixed penalty: nothing to choose
                if l2 is not None
                else [float(c) for c in np.atleast_1d(L2_GRID if l2_rows is None else l2_rows)]
            )
            few = int(known[:, :n_heads].sum(axis=0).max()) < PRIOR_CHOICE_ROWS
            offered = PRIOR_SCALES if prior_scales is None else prior_scales
            scales = list(offered) if offset is not None and few else [1.0]
            choice = f" × {len(grid)} L2 penalties" if len(grid) > 1 else ""
            choice += f" × {len(scales)} prior weights" if len(scales) > 1 else ""
            say(f"fitting {n_heads} model(s) × {FOLDS} folds{choice} on {len(texts)} prompts")
            w, scores, chosen, scale = fit_folds(
                x, labels[:, :n_heads], known[:, :n_heads], folds, grid, iterations, offset, l2,
                scales,
            )  # fmt: skip
            weights = w.reshape(x.width, FOLDS, n_heads).mean(axis=1)
            columns = x.columns
        lengths = None
        if x is not None:
            say(f"fitting answer lengths on {len(texts)} prompts")
            lengths = fit_lengths(x, tokens, folds, FOLDS)
        mean_tokens = np.array(
            [np.nanmean(col) if np.isfinite(col).any() else np.nan for col in tokens.T]
        )
        keys = np.array([text_key(t) for t in texts], dtype=np.int64)
        if scale == 0.0:  # the fit is better without the prior: decisions skip it
            prior, head_tiers = None, []
        predictor = cls(
            reference, heads, featurizer, columns, weights, mean_tokens,
            known.sum(axis=0).astype(np.float64), keys, scores,
            encoder, prior, prior_path if prior is not None else "", head_tiers, scale,
            lengths,
        )  # fmt: skip
        predictor.l2_rows = chosen
        return predictor

    @classmethod
    def from_prior(
        cls,
        prior: QualityPredictor,
        models: Sequence[str],
        reference: str,
        tiers: Sequence[int],
        prior_path: str,
    ) -> QualityPredictor:
        """The prior alone, for ``models`` (their tiers): a router before any labelled
        traffic. Expected answer lengths are unknown (the router then assumes 256)."""
        heads = [m for m in models if m != reference]
        return cls(
            reference, heads, Featurizer.fit([], np.zeros((0, 1)), False, False),
            np.zeros(0, np.int64), np.zeros((0, len(heads)), np.float32),
            np.full(len(heads) + 1, np.nan), np.zeros(len(heads) + 1),
            np.zeros(0, np.int64), np.zeros((0, len(heads)), np.float32),
            "none", prior, prior_path, tiers,
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
            encoder=np.array(self.encoder),
            prior=np.array(self.prior_path),
            prior_scale=np.array(self.prior_scale),
            tiers=self.tiers,
            length_weights=self.lengths.weights.astype(np.float16),
            length_base=self.lengths.base,
            train_demand=self.lengths.train_demand.astype(np.float16),
            length_l2_rows=np.array(self.lengths.l2_rows),
            length_rank=np.array(
                math.nan if self.lengths.rank_correlation is None else self.lengths.rank_correlation
            ),
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
            prior_path = str(data["prior"]) if "prior" in data else ""
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
                str(data["encoder"]) if "encoder" in data else "static",
                None,
                prior_path,
                data.get("tiers", ()),
                float(data["prior_scale"]) if "prior_scale" in data else 1.0,
                _saved_lengths(data),
            )

        predictor = load_cached(path, build, "predictor")
        if predictor.prior_path and predictor.prior is None:  # outside load_cached's lock
            predictor.prior = cls.load(resolve_prior(predictor.prior_path))
        return predictor

    def logits(
        self,
        text: str,
        tags: Mapping[str, str] | None = None,
        embedding: np.ndarray | None = None,
    ) -> np.ndarray:
        """One logit per learned model: out-of-group for a training prompt, else the mean
        model (``embedding``: the prompt's, when the caller embedded a batch already)."""
        return self._scores(text, tags, embedding)[:-1]

    def _scores(
        self,
        text: str,
        tags: Mapping[str, str] | None = None,
        embedding: np.ndarray | None = None,
    ) -> np.ndarray:
        """``logits`` followed by the prompt's answer-length demand (``lengths.py``)."""
        key = text_key(text)
        at = int(np.searchsorted(self.train_keys, key))
        if at < len(self.train_keys) and self.train_keys[at] == key:
            return self._train_rows[at].astype(np.float64)
        counts, shape = text_features(text)
        slots, values = self.featurizer.row(counts, shape, tags or {})
        out = np.zeros(len(self.models) + 1, dtype=np.float32)
        if len(self.columns):
            where = np.minimum(np.searchsorted(self.columns, slots), len(self.columns) - 1)
            hit = self.columns[where] == slots
            out += values[hit].astype(np.float32) @ self._dot_weights[where[hit]]
        if self.dense_dim:
            vector = embed_one(text, self.encoder) if embedding is None else embedding
            out += vector @ self._dot_weights[len(self.columns) :]
        if self.prior is not None and len(self.tiers):
            out[:-1] += self.prior_scale * self.prior.logits(text)[self.tiers].astype(np.float32)
        return out.astype(np.float64)

    def logits_many(self, texts: Sequence[str]) -> np.ndarray:
        """``logits`` of many prompts, their embeddings computed in batches."""
        if not texts:
            return np.zeros((0, len(self.models)))
        vectors: list[np.ndarray | None] = [None] * len(texts)
        keys = np.array([text_key(t) for t in texts], dtype=np.int64)
        at = np.minimum(np.searchsorted(self.train_keys, keys), max(0, len(self.train_keys) - 1))
        known = self.train_keys[at] == keys if len(self.train_keys) else np.zeros(len(keys), bool)
        new = [i for i in range(len(texts)) if not known[i]]  # others: stored scores
        if self.dense_dim and new:
            for i, vector in zip(
                new, embed_many([texts[i] for i in new], self.encoder), strict=True
            ):
                vectors[i] = vector
        return np.stack([self.logits(t, None, v) for t, v in zip(texts, vectors, strict=True)])

    def predict(self, text: str, tags: Mapping[str, str] | None = None) -> dict[str, Prediction]:
        """A prediction for the reference and every learned model."""
        cache_key = (text, tuple(sorted((tags or {}).items())))
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        scores = self._scores(text, tags)
        relative = 1.0 / (1.0 + np.exp(-scores[:-1]))
        tokens = expected_tokens(self.lengths.base, float(scores[-1]))  # reference last
        out = {
            model: Prediction(float(relative[j]), float(tokens[j]), self.support[j])
            for j, model in enumerate(self.models)
        }
        out[self.reference] = Prediction(1.0, float(tokens[-1]), math.inf)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[cache_key] = out
        return out


def _saved_lengths(data: Any) -> LengthModel | None:
    """The length model of a saved predictor (None: a file from before it existed)."""
    if "length_weights" not in data:
        return None
    rank = float(data["length_rank"])
    return LengthModel(
        data["length_weights"].astype(np.float32),
        data["length_base"].astype(np.float64),
        data["train_demand"].astype(np.float64),
        float(data["length_l2_rows"]),
        None if math.isnan(rank) else rank,
    )
