"""A family of cascade-threshold candidates replayed at about one replay per tier gives
the same row outcomes as replaying each candidate whole (``replay/thresholds.py``), and
``thrifty tune`` chooses and estimates the same with that fast path as without it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from thrifty.cascade.search import THRESHOLDS
from thrifty.config import parse_config
from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.replay.search import deep_merge
from thrifty.replay.simulator import Replayer, RowOutcome
from thrifty.replay.thresholds import AMBIGUOUS, OFF, family_key, family_outcomes, predicted
from thrifty.replay.tuner import TuneResult, tune

EXAMPLES = Path(__file__).parents[2] / "examples"
TIMINGS = re.compile(rb'"(?:decision|check)_ms":[0-9.e-]+')  # wall-clock, not results
MODELS = ["cheap", "middle", "strong"]


def _canonical(value: Any) -> bytes:
    return TIMINGS.sub(b"", orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=repr))


def _seen(result: TuneResult) -> dict[str, Any]:
    return {
        "chosen": result.chosen.candidate.label,
        "fit": result.fit,
        "held_out": result.held_out,
        "rows": [(e.candidate.label, e.outcomes) for e in result.evaluated],
    }


def test_tune_is_the_same_with_and_without_the_threshold_fast_path(tmp_path: Path) -> None:
    records = load_dataset(bundled_dataset())[:36]
    raw = yaml.safe_load((EXAMPLES / "arena.yaml").read_text())
    assert raw["cascade"]["enabled"] and raw["routing"]["enabled"]

    def run(tag: str, fast: bool) -> TuneResult:
        return tune(records, raw, 0.95, folds=2, base_dir=EXAMPLES, workdir=tmp_path / tag,
                    fast_thresholds=fast)  # fmt: skip

    full, fast = run("full", False), run("fast", True)
    assert len(full.evaluated) > 100  # routing × cascade candidates were replayed
    assert _canonical(_seen(fast)) == _canonical(_seen(full))


class CountingReplayer(Replayer):
    """A real :class:`Replayer` that counts the rows it replays."""

    rows_replayed = 0

    def __call__(self, config: Any, rows: Any = None, caller: Any = None) -> list[RowOutcome]:
        out = super().__call__(config, rows, caller)
        self.rows_replayed += len(out)
        return out


def test_a_family_costs_about_one_replay_per_tier(tmp_path: Path) -> None:
    """Every threshold of the grid on the arena cascade (routing off: every row climbs
    from the cheap tier): the same outcomes as whole replays, for fewer rows replayed."""
    records = load_dataset(bundled_dataset())[:60]
    raw = yaml.safe_load((EXAMPLES / "arena.yaml").read_text())
    raw = deep_merge(raw, {"routing": {"enabled": False}})
    tiers = raw["cascade"]["tiers"]
    configs = [
        parse_config(deep_merge(raw, {"cascade": {"tiers": [{**tiers[0], "threshold": t},
                                                             tiers[1]]}}), base_dir=EXAMPLES)
        for t in THRESHOLDS
    ]  # fmt: skip
    keys = {family_key(c, distinct=True) for c in configs}
    assert len(keys) == 1 and None not in keys
    counting = CountingReplayer(records)
    fast = family_outcomes(counting, configs)
    whole = [Replayer(records)(c) for c in configs]
    assert _canonical(fast) == _canonical(whole)
    accepted = {o.techniques["cascade"]["accepted"] for rows in whole for o in rows}
    assert len(accepted) == 2  # both tiers answer somewhere on the grid
    assert counting.rows_replayed <= 3 * len(records) < len(configs) * len(records)


def test_governance_or_a_repeated_request_keeps_whole_replays() -> None:
    raw = yaml.safe_load((EXAMPLES / "arena.yaml").read_text())
    config = parse_config(raw, base_dir=EXAMPLES)
    assert family_key(config, distinct=True) is not None
    assert family_key(config, distinct=False) is None  # the exact cache could hit
    budgets = deep_merge(raw, {"governance": {"budgets": [
        {"scope": "tag:set=a", "limit_usd": 1.0, "period": "day"}]}})  # fmt: skip
    assert family_key(parse_config(budgets, base_dir=EXAMPLES), distinct=True) is None


def _scored(*scores: float, start: int = 0) -> RowOutcome:
    """A row replayed under thresholds that rejected every checked tier but the last score's."""
    log: list[dict[str, Any]] = [
        {"model": MODELS[start + i], "accepted": False, "score": s, "reason": "r"}
        for i, s in enumerate(scores)
    ]
    if start + len(scores) == len(MODELS) - 1:
        log.append({"model": MODELS[-1], "accepted": True, "reason": "last tier"})
    else:
        log[-1]["accepted"] = True
    cascade = {"start": MODELS[start], "accepted": log[-1]["model"], "tiers": log}
    return RowOutcome("r", "ok", techniques={"cascade": cascade})


@pytest.mark.parametrize(
    ("scored", "limits", "expected"),
    [
        (_scored(0.3, 0.6), (0.2, 0.2), "cheap"),  # the first tier reaching its threshold
        (_scored(0.3, 0.6), (0.5, 0.5), "middle"),
        (_scored(0.3, 0.6), (0.7, 0.7), "strong"),
        (_scored(0.3, 0.6), (0.1, 0.9), "cheap"),  # thresholds per tier
        (_scored(0.6, start=1), (0.9, 0.5), "middle"),  # from where routing started
        (_scored(0.3, 0.6), (0.3, 0.5), None),  # on the threshold: the rounding hides which
        (_scored(0.3, 0.6), (0.3 + AMBIGUOUS, 0.5), None),
        (_scored(0.3, 0.6), (0.3 + 2 * AMBIGUOUS, 0.5), "middle"),
        (_scored(0.3, 0.6), (0.3 - 2 * AMBIGUOUS, 0.5), "cheap"),
        (_scored(0.3, 0.96), (0.95, 0.95), "middle"),  # accepted where it was scored
    ],
)
def test_prediction_is_the_first_tier_whose_score_reaches_its_threshold(
    scored: RowOutcome, limits: tuple[float, float], expected: str | None
) -> None:
    assert predicted(scored, MODELS, limits) == expected


def test_prediction_is_monotone_in_the_threshold() -> None:
    scored = _scored(0.31, 0.52)
    order = {None: -1, "cheap": 0, "middle": 1, "strong": 2}
    tiers = [predicted(scored, MODELS, (t / 100, t / 100)) for t in range(0, 101)]
    known = [order[t] for t in tiers if t is not None]
    assert known == sorted(known) and set(tiers) == {"cheap", "middle", "strong", None}


def test_rows_that_cannot_be_predicted_are_replayed() -> None:
    failed = _scored(0.9)
    failed.techniques["cascade"]["tiers"][0] = {"model": "cheap", "accepted": False,
                                                "reason": "failed: timeout"}  # fmt: skip
    assert predicted(failed, MODELS, (0.1, 0.1)) is None
    assert predicted(RowOutcome("r", "missing_answer"), MODELS, (0.1, 0.1)) is None
    assert predicted(RowOutcome("r", "ok"), MODELS, (0.1, 0.1)) == OFF  # no cascade: any threshold
