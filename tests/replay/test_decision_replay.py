"""The tuner's fast path gives the pipeline's own costs and quality; the routing grid
reaches both ends; the selection margin grows as the evidence shrinks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from thrifty.config import parse_config
from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.replay.decisions import DecisionReplay
from thrifty.replay.search import deep_merge
from thrifty.replay.simulator import RowOutcome, replay, without_techniques
from thrifty.replay.summary import totals
from thrifty.replay.tuner import retained_se, tune

EXAMPLES = Path(__file__).parents[2] / "examples"
CHEAP, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def _raw() -> dict:
    raw = yaml.safe_load((EXAMPLES / "arena.yaml").read_text())
    raw = {k: v for k, v in raw.items() if k not in ("routing", "cascade", "cache")}
    return deep_merge(raw, {"routing": {"enabled": True, "strategy": "tradeoff",
                                        "candidates": [CHEAP, STRONG]}})  # fmt: skip


def test_decisions_match_the_full_pipeline(tmp_path: Path) -> None:
    records = load_dataset(bundled_dataset())[:80]
    result = tune(records, _raw(), 0.9, folds=2, base_dir=EXAMPLES, workdir=tmp_path)
    labels = [e.candidate.label for e in result.evaluated]
    assert "route λ=0" in labels and "route λ=1e+09" in labels  # both ends of the knob
    for item in result.evaluated:
        if item.config is None:
            continue
        fast = DecisionReplay(records).outcomes(item.config)
        full = replay(records, item.config)
        assert fast is not None
        assert [(o.cost, o.quality, o.upstream_model) for o in fast] == [
            (o.cost, o.quality, o.upstream_model) for o in full
        ]
    # the chosen point went through the whole pipeline: its rows carry the route decision
    assert any("route" in o.techniques for o in result.chosen.outcomes)


def test_one_decision_replay_shared_by_every_candidate_keeps_the_totals(tmp_path: Path) -> None:
    """The tuner asks one ``DecisionReplay`` for every candidate (each model's rows are
    measured once and shared): every candidate's totals equal the full pipeline's."""
    records = load_dataset(bundled_dataset())[:60]
    result = tune(records, _raw(), 0.9, folds=2, base_dir=EXAMPLES, workdir=tmp_path)
    configs = [e.config for e in result.evaluated if e.config is not None]
    assert len(configs) > 3
    shared = DecisionReplay(records)
    baseline = replay(records, without_techniques(configs[0], STRONG))
    rows = range(len(records))
    served = set()
    for config in configs:
        fast, full = shared.outcomes(config), replay(records, config)
        assert fast is not None
        served |= {o.upstream_model for o in fast if o.ok}
        assert [(o.cost, o.baseline_cost, o.quality) for o in fast] == [
            (o.cost, o.baseline_cost, o.quality) for o in full
        ]
        assert totals(fast, baseline, rows) == totals(full, baseline, rows)
    assert served == {CHEAP, STRONG}  # both models' shared rows were used


def test_the_fast_path_stays_out_of_cascades() -> None:
    records = load_dataset(bundled_dataset())[:5]
    raw = deep_merge(_raw(), {"cascade": {"enabled": True, "tiers": [
        {"model": CHEAP, "checks": ["heuristics"]}, {"model": STRONG}]}})  # fmt: skip
    raw["routing"]["predictor"] = str(EXAMPLES / "arena.predictor.npz")
    assert DecisionReplay(records).outcomes(parse_config(raw, base_dir=EXAMPLES)) is None


@pytest.mark.parametrize("n", [50, 5000])
def test_margin_shrinks_with_rows(n: int) -> None:
    base = [RowOutcome(str(i), "ok", quality=1.0) for i in range(n)]
    actual = [RowOutcome(str(i), "ok", quality=float(i % 10 != 0)) for i in range(n)]
    se = retained_se(actual, base, range(n))
    assert 0.2 / n**0.5 < se < 0.4 / n**0.5  # sqrt(0.09) / sqrt(n)
