"""The AUC ``thrifty tune`` prints and the benchmarks report: ties count half."""

from __future__ import annotations

import numpy as np
import pytest

from thrifty.routing.ranking import auc


def test_auc_orders_and_counts_ties_half() -> None:
    labels = np.array([0, 0, 1, 1])
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert auc(np.array([0.5, 0.5, 0.5, 0.5]), labels) == 0.5  # a constant predictor
    # positives 1 (tied with a negative) and 2: pairs (1 vs 1) 0.5, (2 vs 1) 1 -> 0.75
    assert auc(np.array([1.0, 1.0, 2.0]), np.array([0, 1, 1])) == pytest.approx(0.75)


def test_auc_needs_both_classes() -> None:
    assert auc(np.array([0.3, 0.4]), np.array([1, 1])) is None
