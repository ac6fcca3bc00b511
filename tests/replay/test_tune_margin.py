"""The tuner's safety margin is chosen by its own folds: the smallest margin whose
choices, measured out of fold, keep the target (``tuner.calibrated_margin``)."""

from __future__ import annotations

from pathlib import Path

from tests.replay.test_tune_share import TARGET, _raw, synthetic

from thrifty.replay.simulator import RowOutcome
from thrifty.replay.tuner import MARGIN_GRID, calibrated_margin, tune


def _fold(quality: float, rows: int = 10) -> tuple[list[RowOutcome], list[RowOutcome]]:
    """A held-out fold whose choice retained ``quality`` of the reference's grades."""
    actual = [
        RowOutcome(f"r{i}", "ok", model="small", cost=0.1, quality=quality) for i in range(rows)
    ]
    baseline = [RowOutcome(f"r{i}", "ok", model="big", cost=1.0, quality=1.0) for i in range(rows)]
    return actual, baseline


def test_the_smallest_margin_that_keeps_the_target_out_of_fold_is_chosen() -> None:
    held = {z: [_fold(q)] * 3 for z, q in [(1.0, 0.93), (1.5, 0.945), (2.0, 0.955), (3.0, 0.97)]}
    assert calibrated_margin(held, TARGET) == 2.0
    assert calibrated_margin({1.0: [_fold(0.96)] * 3, 2.0: [_fold(0.99)] * 3}, TARGET) == 1.0
    assert calibrated_margin({1.0: [_fold(0.90)] * 3, 2.0: [_fold(0.92)] * 3}, TARGET) == 2.0


def test_a_fold_left_out_does_not_choose_its_own_margin() -> None:
    # with margin 1 the choice made without fold 0 fails badly on fold 0 only
    held = {1.0: [_fold(0.80), _fold(0.99), _fold(0.99)], 2.0: [_fold(0.97)] * 3}
    assert calibrated_margin(held, TARGET) == 2.0  # the final choice sees every fold
    assert calibrated_margin(held, TARGET, [1, 2]) == 1.0  # fold 0 measured under 1.0


def test_tune_reports_the_margin_its_folds_chose(tmp_path: Path) -> None:
    result = tune(synthetic(160, signal=False), _raw(), TARGET, folds=3, workdir=tmp_path)
    held = result.held_out
    margin = held["margin_z"]
    assert margin in MARGIN_GRID and len(held["margin_z_per_fold"]) == 3
    by_margin = {float(z): q for z, q in held["quality_by_margin"].items()}
    smaller = [z for z in MARGIN_GRID if z < margin]
    assert all(by_margin[z] < TARGET for z in smaller)
    assert by_margin[margin] >= TARGET or margin == MARGIN_GRID[-1]
