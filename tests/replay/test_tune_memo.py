"""``thrifty tune`` chooses and estimates the same with the task memo as without it.

The shipped arena example (learned classifier, routing and cascade candidates) tuned
on a slice of the shipped arena set twice: once with ``routing.tasks.PREDICTIONS``
holding nothing (every request classified afresh, as before the memo) and once with it
remembering; every candidate's row outcomes, the choice and both estimates must match."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.replay.tuner import TuneResult, tune
from thrifty.routing.tasks import PREDICTIONS

EXAMPLES = Path(__file__).parents[2] / "examples"
TIMINGS = re.compile(rb'"(?:decision|check)_ms":[0-9.e-]+')  # wall-clock, not results


def _seen(result: TuneResult) -> dict[str, Any]:
    return {
        "chosen": result.chosen.candidate.label,
        "fit": result.fit,
        "held_out": result.held_out,
        "rows": {e.candidate.label: e.outcomes for e in result.evaluated},
    }


def _canonical(result: TuneResult) -> bytes:
    raw = orjson.dumps(_seen(result), option=orjson.OPT_SORT_KEYS, default=repr)
    return TIMINGS.sub(b"", raw)


def test_tune_is_the_same_with_and_without_the_memo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = load_dataset(bundled_dataset())[:36]
    raw = yaml.safe_load((EXAMPLES / "arena.yaml").read_text())
    assert raw["routing"]["classifier"] == "learned"

    def run(tag: str) -> TuneResult:
        return tune(records, raw, 0.95, folds=2, base_dir=EXAMPLES, workdir=tmp_path / tag)

    PREDICTIONS.clear()
    with monkeypatch.context() as patch:
        patch.setattr(PREDICTIONS, "maxsize", 0)  # remembers nothing
        plain = run("plain")
        assert len(PREDICTIONS) == 0
    remembered = run("memo")
    assert len(PREDICTIONS) >= len(records)
    assert len(remembered.evaluated) > 100  # routing × cascade candidates were replayed
    assert _canonical(remembered) == _canonical(plain)
