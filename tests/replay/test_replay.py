"""Replay and tune on a tiny hand-made dataset: numbers equal a hand computation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from thrifty.config import parse_config
from thrifty.pipeline.attribution import CAUSES
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, write_dataset
from thrifty.replay.search import Candidate
from thrifty.replay.simulator import replay, without_techniques
from thrifty.replay.summary import summarize
from thrifty.replay.tuner import Evaluated, cross_validate, fold_rows, select
from thrifty.tokens import count_messages, count_text

BIG = {"input": 10.0, "output": 30.0}  # USD per million tokens
SMALL = {"input": 1.0, "output": 2.0}


def record(rid: str, prompt: str, answers: dict[str, tuple[str, float]]) -> ReplayRecord:
    return ReplayRecord(
        id=rid,
        messages=({"role": "user", "content": prompt},),
        params={},
        tags={"set": "tiny"},
        answers={m: RecordedAnswer(text=t, quality=q) for m, (t, q) in answers.items()},
    )


RECORDS = [
    record("a", "What is 2 + 2?", {"big": ("It is 4.", 1.0), "small": ("4", 1.0)}),
    record(
        "b", "Name a prime number above 10.", {"big": ("11 is prime.", 1.0), "small": ("12", 0.0)}
    ),
    record("c", "Capital of France?", {"big": ("Paris.", 0.9), "small": ("Paris", 0.8)}),
]


def config(**overrides: Any):
    data = {
        "providers": {"rec": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {
            "big": {"provider": "rec", "price": BIG},
            "small": {"provider": "rec", "price": SMALL},
        },
        "default_model": "big",
        "baseline_model": "big",
        **overrides,
    }
    return parse_config(data, {})


def hand_cost(model: str, price: dict[str, float], rec: ReplayRecord) -> float:
    prompt = count_messages(list(rec.messages), model).tokens
    output = count_text(rec.answers[model].text or "", model).tokens
    return (prompt * price["input"] + output * price["output"]) / 1e6


def test_techniques_off_saves_nothing_and_keeps_quality() -> None:
    cfg = config()
    actual = replay(RECORDS, cfg)
    baseline = replay(RECORDS, without_techniques(cfg, "big"))
    summary = summarize(actual, baseline, "big")
    expected = sum(hand_cost("big", BIG, r) for r in RECORDS)
    assert summary["baseline_cost"] == pytest.approx(expected, rel=1e-12)
    assert summary["actual_cost"] == pytest.approx(expected, rel=1e-12)
    assert summary["savings_pct"] == pytest.approx(0.0)
    assert summary["quality_retained"] == pytest.approx(1.0)
    assert summary["missing_answers"] == 0 and summary["unpriced"] == 0
    assert all(t["net_savings"] == 0 for t in summary["by_technique"].values())
    assert summary["by_model"] == {
        "big": {"requests": 3, "share": 1.0, "cost": pytest.approx(expected)}
    }


def test_static_substitution_matches_hand_computation() -> None:
    cfg = config(default_model="small")
    summary = summarize(
        replay(RECORDS, cfg), replay(RECORDS, without_techniques(cfg, "big")), "big"
    )
    big = sum(hand_cost("big", BIG, r) for r in RECORDS)
    small = sum(hand_cost("small", SMALL, r) for r in RECORDS)
    # the ledger's baseline: small's answers (the served tokens) at big's prices
    served_at_big = sum(
        (count_messages(list(r.messages), "small").tokens * BIG["input"]
         + count_text(r.answers["small"].text or "", "small").tokens * BIG["output"]) / 1e6
        for r in RECORDS
    )  # fmt: skip
    assert summary["actual_cost"] == pytest.approx(small, rel=1e-12)
    assert summary["baseline_cost"] == pytest.approx(served_at_big, rel=1e-12)
    assert summary["savings_pct"] == pytest.approx(100 * (1 - small / served_at_big))
    # and named apart, big's own recorded answers
    assert summary["baseline_replayed_cost"] == pytest.approx(big, rel=1e-12)
    assert summary["savings_pct_replayed"] == pytest.approx(100 * (1 - small / big))
    assert summary["quality_baseline"] == pytest.approx((1.0 + 1.0 + 0.9) / 3)
    assert summary["quality_actual"] == pytest.approx((1.0 + 0.0 + 0.8) / 3)
    assert summary["quality_retained"] == pytest.approx(1.8 / 2.9)
    # an ``auto`` request served by a cheaper default: its own cause, nothing unattributed
    net = summary["by_technique"]["default_model"]["net_savings"]
    assert net == pytest.approx(served_at_big - small, rel=1e-12)
    assert summary["unattributed_savings"] == pytest.approx(0.0, abs=1e-15)


def test_missing_answer_is_explicit_and_excluded() -> None:
    records = [*RECORDS, record("d", "Unrecorded for small", {"big": ("x", 1.0)})]
    cfg = config(default_model="small")
    actual = replay(records, cfg)
    assert actual[3].status == "missing_answer" and "small" in (actual[3].error or "")
    summary = summarize(actual, replay(records, without_techniques(cfg, "big")), "big")
    assert summary["missing_answers"] == 1
    assert summary["compared_requests"] == 3


def test_cross_validation_never_scores_training_rows() -> None:
    records = [
        record(
            f"r{i}",
            f"question {i}",
            {"big": ("long answer " * 5, 1.0), "small": ("short", 1.0 if i % 3 else 0.0)},
        )
        for i in range(30)
    ]
    cfg_big, cfg_small = config(), config(default_model="small")
    baseline = replay(records, without_techniques(cfg_big, "big"))
    evaluated = [
        Evaluated(Candidate("big"), replay(records, cfg_big)),
        Evaluated(Candidate("small"), replay(records, cfg_small)),
    ]
    held = cross_validate(lambda train, tag: evaluated, baseline, target=0.5, folds=5, seed=7)
    rows = list(range(30))
    folds = fold_rows(rows, 5, seed=7)
    assert sorted(i for fold in folds for i in fold) == rows
    pooled_cost = 0.0
    for test in folds:
        train = [i for i in rows if i not in test]
        assert not set(train) & set(test)
        pick = evaluated[select(evaluated, baseline, train, 0.5).index]
        pooled_cost += sum(pick.outcomes[i].cost for i in test)
    assert held["actual_cost"] == pytest.approx(pooled_cost)
    assert held["savings_pct_ci"][0] <= held["savings_pct"] <= held["savings_pct_ci"][1]


def test_replay_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import yaml

    from thrifty.cli.main import main

    dataset = tmp_path / "tiny.jsonl"
    write_dataset(RECORDS, dataset)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "providers": {"rec": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {"big": {"provider": "rec", "price": BIG},
                   "small": {"provider": "rec", "price": SMALL}},
        "default_model": "big", "baseline_model": "big",
    }))  # fmt: skip
    html = tmp_path / "r.html"
    assert (
        main(
            [
                "replay",
                "--dataset",
                str(dataset),
                "--config",
                str(cfg),
                "--json",
                "--html",
                str(html),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    for key in ("requests", "baseline_model", "baseline_cost", "actual_cost", "savings_pct",
                "quality_baseline", "quality_actual", "quality_retained", "unpriced",
                "missing_answers", "by_model", "by_technique"):  # fmt: skip
        assert key in out
    assert set(out["by_technique"]) == set(CAUSES)
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_tune_cli_writes_a_config_serve_and_replay_accept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import yaml

    from thrifty.cli.main import main
    from thrifty.config import load_config

    records = [
        record(f"r{i}", f"question {i}", {"big": ("a long answer " * 4, 1.0), "small": ("ok", 0.9)})
        for i in range(20)
    ]
    dataset = tmp_path / "d.jsonl.gz"
    write_dataset(records, dataset)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "auth": {"keys": ["${SOME_KEY:-k}"]},
        "providers": {"rec": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {"big": {"provider": "rec", "price": BIG},
                   "small": {"provider": "rec", "price": SMALL}},
        "default_model": "big", "baseline_model": "big",
    }))  # fmt: skip
    out = tmp_path / "tuned.yaml"
    html = tmp_path / "tune.html"
    args = ["tune", "--dataset", str(dataset), "--config", str(cfg), "--out", str(out)]
    assert main([*args, "--json", "--html", str(html), "--folds", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["held_out"]["folds"] == 4 and result["held_out"]["rows"] == 20
    assert "held-out" in out.read_text().splitlines()[2].lower()
    assert "${SOME_KEY:-k}" in out.read_text(), "secrets stay as references, never expanded"
    load_config(out, {})
    assert main(["replay", "--dataset", str(dataset), "--config", str(out)]) == 0
    assert "held-out" in html.read_text()


def test_tune_picks_the_semantic_threshold_on_held_out_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import yaml

    from thrifty.cli.main import main

    pairs = tmp_path / "pairs.jsonl"
    rows = []
    for i in range(40):
        rows.append(
            {
                "a": f"How do I sort a list of {i} numbers in Python?",
                "b": f"How can I sort a Python list of {i} numbers?",
                "same": True,
            }
        )
        rows.append(
            {"a": f"Convert {i} km to miles", "b": f"Convert {i} miles to km", "same": False}
        )
    pairs.write_text("\n".join(json.dumps(r) for r in rows))
    dataset = tmp_path / "d.jsonl"
    write_dataset(RECORDS, dataset)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "providers": {"rec": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {"big": {"provider": "rec", "price": BIG}},
        "default_model": "big", "baseline_model": "big",
        "cache": {"enabled": True, "store": "memory", "semantic": {"enabled": True}},
    }))  # fmt: skip
    out = tmp_path / "tuned.yaml"
    args = ["tune", "--dataset", str(dataset), "--config", str(cfg), "--out", str(out), "--json"]
    assert main([*args, "--cache-pairs", str(pairs), "--false-hit-budget", "0.01"]) == 0
    choice = json.loads(capsys.readouterr().out)["semantic_cache"]
    held = choice["held_out"]
    assert held["pairs"] == 40 and held["false_hit_rate"] <= 0.05  # the guards block the swaps
    tuned = yaml.safe_load(out.read_text())
    assert tuned["cache"]["semantic"]["threshold"] == choice["threshold"]
