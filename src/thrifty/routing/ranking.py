"""How well a quality predictor ranks prompts: the AUC for "as good as the reference".

0.5 is chance: a router built on such a predictor saves no more than random routing at
the same quality. ``thrifty tune`` prints it for the predictor it fitted (from the
cross-fitted predictions of the tuning rows, so never from a model that saw the row's
grade) and the benchmarks report it on held-out rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from thrifty.recordings.dataset import ReplayRecord
from thrifty.routing.predictor import QualityPredictor
from thrifty.routing.text import prompt_text


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count half);
    None when one class is absent."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # rank of each distinct score's last copy (1-based)
    ranks = (ends - (counts - 1) / 2)[inverse]  # tied scores share their mean rank
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
