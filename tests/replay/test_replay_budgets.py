"""``thrifty replay`` runs governance as the gateway does: budgets refuse, and it says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from thrifty.cli.main import main
from thrifty.config import parse_config
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, write_dataset
from thrifty.replay.simulator import replay, without_techniques
from thrifty.replay.summary import summarize

BIG = {"input": 10.0, "output": 30.0}  # USD per million tokens
LIMIT = 0.004  # a worst case is ~$0.003 (100 answer tokens), an answer ~$0.0002
RECORDS = [
    ReplayRecord(
        id=f"r{i}",
        messages=({"role": "user", "content": f"Question number {i}?"},),
        params={},
        tags={"set": "tiny"},
        answers={"big": RecordedAnswer(text=f"Answer {i}.", quality=1.0)},
    )
    for i in range(10)
]


def raw_config(**governance: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "providers": {"rec": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {"big": {"provider": "rec", "price": BIG}},
        "default_model": "big",
        "baseline_model": "big",
    }
    if governance:
        data["governance"] = {"default_max_output_tokens": 100, **governance}
    return data


DAILY = {"budgets": [{"scope": "tag:set=tiny", "period": "day", "limit_usd": LIMIT}]}


def test_a_daily_budget_refuses_once_spent_and_names_the_budget() -> None:
    config = parse_config(raw_config(**DAILY), {})
    actual = replay(RECORDS, config)
    statuses = [row.status for row in actual]
    refused = statuses.count("refused")
    assert 0 < refused < len(RECORDS)
    # spend only grows, so once the budget refuses it refuses every later request
    assert statuses == ["ok"] * (len(RECORDS) - refused) + ["refused"] * refused
    assert all(row.error_code == "budget_exceeded" for row in actual if row.status == "refused")
    assert sum(row.cost for row in actual if row.ok) <= LIMIT

    baseline = replay(RECORDS, without_techniques(config, "big"))
    assert all(row.ok for row in baseline), "the baseline is every request, no budgets"
    summary = summarize(actual, baseline, "big")
    assert summary["refused"] == refused
    assert summary["refused_by_budget"] == {"tag:set=tiny": refused}
    assert summary["compared_requests"] == len(RECORDS) - refused


def test_without_governance_nothing_is_refused() -> None:
    plain = replay(RECORDS, parse_config(raw_config(), {}))
    assert [row.status for row in plain] == ["ok"] * len(RECORDS)
    loose = {"budgets": [{"scope": "tag:set=tiny", "period": "day", "limit_usd": 100.0}]}
    roomy = replay(RECORDS, parse_config(raw_config(**loose), {}))
    assert [row.cost for row in roomy] == [row.cost for row in plain]


def test_replay_cli_reports_what_the_budgets_would_have_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "tiny.jsonl"
    write_dataset(RECORDS, dataset)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw_config(**DAILY)))
    args = ["replay", "--dataset", str(dataset), "--config", str(cfg)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["refused"] < len(RECORDS)
    assert out["refused_by_budget"] == {"tag:set=tiny": out["refused"]}
    assert main(args) == 0
    table = capsys.readouterr().out
    assert f"refused   {out['refused']} by governance ({out['refused']} by tag:set=tiny)" in table
