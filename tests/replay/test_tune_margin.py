"""The tuner's safety margin is chosen by its own folds: the smallest margin whose
choices, measured out of fold, keep the target (``tuner.calibrated_margin``)."""

from __future__ import annotations

from pathlib import Path

from tests.replay.test_tune_share import TARGET, _raw, synthetic

from thrifty.replay.simulator import RowOutcome
from thrifty.replay.tuner import (
    MARGIN_GRID,
    calibrated_margin,
    pooled_under_other_folds,
    tune,
)


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


def test_each_fold_is_pooled_under_the_margin_the_other_folds_chose() -> None:
    # without fold 0, margin 1 keeps the target; without fold 1 or 2, it does not
    held = {
        1.0: [_fold(0.99, 10), _fold(0.90, 10), _fold(0.90, 10)],
        2.0: [_fold(0.97, 10), _fold(0.96, 10), _fold(0.96, 10)],
    }
    held[1.0][0][0][0] = RowOutcome("r0", "ok", model="marked", cost=0.1, quality=0.99)
    per_fold, actual, baseline = pooled_under_other_folds(held, TARGET)
    assert calibrated_margin(held, TARGET) == 2.0
    assert per_fold == [2.0, 2.0, 2.0]  # fold 0 left out: 0.90 and 0.90 fail at 1.0
    held[1.0][1] = _fold(0.99, 10)
    held[1.0][2] = _fold(0.99, 10)
    per_fold, actual, baseline = pooled_under_other_folds(held, TARGET)
    assert per_fold == [1.0, 1.0, 1.0]
    assert actual[0].model == "marked" and len(actual) == len(baseline) == 30
    held[1.0][0] = _fold(0.50, 10)  # fold 0 alone fails at margin 1
    per_fold, actual, _ = pooled_under_other_folds(held, TARGET)
    assert per_fold == [1.0, 2.0, 2.0]  # fold 0 is measured under the others' choice
    assert [a.quality for a in actual[:10]] == [0.50] * 10


def test_the_final_choice_uses_the_margin_the_folds_chose(tmp_path: Path) -> None:
    records = synthetic(160, signal=False)
    loose = tune(records, _raw(), TARGET, folds=3, workdir=tmp_path / "a", margins=(1.0,))
    tight = tune(records, _raw(), TARGET, folds=3, workdir=tmp_path / "b", margins=(4.0,))
    assert loose.held_out["margin_z"] == 1.0 and tight.held_out["margin_z"] == 4.0
    # no signal: both mix "always small" with the reference; the wider margin, less of it
    assert loose.chosen.config is not None and tight.chosen.config is not None
    assert 0 < tight.chosen.config.routing.share < loose.chosen.config.routing.share < 1
    assert tight.fit["savings_pct"] < loose.fit["savings_pct"]


def test_tune_reports_the_margin_its_folds_chose(tmp_path: Path) -> None:
    result = tune(synthetic(160, signal=False), _raw(), TARGET, folds=3, workdir=tmp_path)
    held = result.held_out
    margin = held["margin_z"]
    assert margin in MARGIN_GRID and len(held["margin_z_per_fold"]) == 3
    by_margin = {float(z): q for z, q in held["quality_by_margin"].items()}
    smaller = [z for z in MARGIN_GRID if z < margin]
    assert all(by_margin[z] < TARGET for z in smaller)
    assert by_margin[margin] >= TARGET or margin == MARGIN_GRID[-1]
