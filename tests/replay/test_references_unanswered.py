"""A model with no recorded answer on the rows is not offered as a reference point."""

from __future__ import annotations

from thrifty.replay.references import reference_points
from thrifty.replay.simulator import RowOutcome


def test_a_model_without_answers_is_no_reference() -> None:
    baseline = [RowOutcome(str(i), "ok", cost=1.0, quality=1.0) for i in range(4)]
    cheap = [RowOutcome(str(i), "ok", cost=0.1, quality=0.5) for i in range(4)]
    silent = [RowOutcome(str(i), "missing_answer") for i in range(4)]
    points = reference_points({"cheap": cheap, "silent": silent}, baseline, range(4), 0.55)
    labels = [p["label"] for p in points]
    assert "always-cheapest (cheap)" in labels and "random-at-equal-cost" in labels
    assert not any("silent" in label for label in labels)
