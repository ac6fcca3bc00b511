"""How well a quality predictor ranks prompts: the AUC for "as good as the reference".

0.5 is chance: a router built on such a predictor saves no more than random routing at
the same quality. ``thrifty tune`` prints it for the predictor it fitted (from the
cross-fitted predictions of the tuning rows, so never from a model that saw the row's
grade) and the benchmarks report it on held-out rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from thrifty.recordings.dataset import ReplayRecord
from thrifty.routing.text import prompt_text

if TYPE_CHECKING:  # the predictor imports its length model, which ranks with this module
    from thrifty.routing.predictor import QualityPredictor


def mean_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing their mean rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # rank of each distinct value's last copy
    return (ends - (counts - 1) / 2)[inverse]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (None when either side is constant or too short)."""
    if len(a) < 3:
        return None
    ra, rb = mean_ranks(a), mean_ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return round(float(np.corrcoef(ra, rb)[0, 1]), 4)


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count half);
    None when one class is absent."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    ranks = mean_ranks(scores)
    return float(
        (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def predictor_auc(predictor: QualityPredictor, records: Sequence[ReplayRecord]) -> float | None:
    """Mean over the predictor's models of the AUC for "the model's answer is graded at
    least as high as the reference's", on the ``records`` graded for both."""
    aucs = []
    for model in predictor.models:
        scores, labels = [], []
        for record in records:
            mine, ref = record.answers.get(model), record.answers.get(predictor.reference)
            if mine is None or ref is None or mine.quality is None or ref.quality is None:
                continue
            pred = predictor.predict(prompt_text(record.messages), record.tags)[model]
            scores.append(pred.quality)
            labels.append(float(mine.quality >= ref.quality))
        value = auc(np.array(scores), np.array(labels))
        if value is not None:
            aucs.append(value)
    return round(float(np.mean(aucs)), 4) if aucs else None
