"""Reports over a real SQLite ledger, and the ``thrifty report`` command."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from thrifty.cli import report as report_cli
from thrifty.ledger import RequestRecord, SqliteLedgerStore, build_report, parse_since, render_table
from thrifty.usage import Usage

DAY1 = datetime(2026, 9, 21, 12, tzinfo=UTC).timestamp()
DAY2 = datetime(2026, 9, 22, 8, tzinfo=UTC).timestamp()


def rec(request_id: str, ts: float, **fields: object) -> RequestRecord:
    values: dict[str, object] = dict(
        request_id=request_id, ts=ts, endpoint="chat.completions", requested_model="big",
        model="big", provider="openai", status="ok", http_status=200,
        usage=Usage(input_tokens=100, output_tokens=10),
    )  # fmt: skip
    values.update(fields)
    return RequestRecord(**values)  # type: ignore[arg-type]


RECORDS = [
    # routed big -> small: saved 0.003
    rec("a", DAY1, model="small", key_id="k1", tags={"team": "search"}, cost=0.001,
        baseline_model="big", baseline_cost=0.004,
        usage=Usage(input_tokens=100, output_tokens=10, cached_input_tokens=30)),
    # served as asked: saved nothing
    rec("b", DAY1, key_id="k2", tags={"team": "ads", "env": "prod"}, cost=0.003,
        baseline_model="big", baseline_cost=0.003,
        usage=Usage(input_tokens=200, output_tokens=20, reasoning_tokens=5)),
    # failed after paid attempts, baseline unknown: counted in the baseline at its cost
    rec("c", DAY2, model=None, provider=None, requested_model="small", key_id="k1",
        status="error", http_status=502, error_type="upstream_error", cost=0.0005,
        usage=Usage()),
    # a model without a price
    rec("d", DAY2, model="mystery", provider="local", cost=0.0, unpriced=True,
        usage=Usage(input_tokens=50, output_tokens=5, estimated=True)),
]  # fmt: skip


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    store = SqliteLedgerStore(path)
    store.write_many(RECORDS)
    store.close()
    return path


@pytest.fixture
def store(ledger: Path):
    s = SqliteLedgerStore(ledger)
    yield s
    s.close()


def groups(report: dict) -> dict[str, dict]:
    return {g["key"]: g for g in report["groups"]}


def test_totals(store: SqliteLedgerStore) -> None:
    report = build_report(store)
    t = report["totals"]
    assert (t["requests"], t["errors"]) == (4, 1)
    assert t["cost"] == pytest.approx(0.0045)
    assert t["baseline_cost"] == pytest.approx(0.0075)
    assert t["savings"] == pytest.approx(0.003)
    assert t["savings"] == pytest.approx(t["baseline_cost"] - t["cost"]), "one headline rule"
    assert t["savings_pct"] == pytest.approx(0.003 / 0.0075 * 100)
    assert (t["input_tokens"], t["output_tokens"]) == (350, 35)
    assert (t["cached_input_tokens"], t["reasoning_tokens"]) == (30, 5)
    assert t["unpriced_requests"] == 1 and report["unpriced"] == 1
    assert t["estimated_token_requests"] == 1
    assert "1 requests have no known price; their cost is NOT included" in report["warnings"]


def test_by_model(store: SqliteLedgerStore) -> None:
    report = build_report(store, by="model")
    assert [g["key"] for g in report["groups"]] == ["big", "small", "mystery"]  # costliest first
    g = groups(report)
    assert g["big"]["requests"] == 1 and g["big"]["savings"] == pytest.approx(0.0)
    # the failed request has no served model: it is grouped under the model it asked for
    assert g["small"]["requests"] == 2 and g["small"]["errors"] == 1
    assert g["small"]["cost"] == pytest.approx(0.0015)
    assert g["small"]["baseline_cost"] == pytest.approx(0.0045)
    assert g["small"]["savings"] == pytest.approx(g["small"]["baseline_cost"] - 0.0015)
    assert g["small"]["share_of_cost"] == pytest.approx(0.0015 / 0.0045)
    assert g["mystery"]["unpriced"] == 1 and g["mystery"]["cost"] == 0.0
    assert g["mystery"]["baseline_cost"] is None and g["mystery"]["savings"] is None
    assert sum(x["share_of_cost"] for x in report["groups"]) == pytest.approx(1.0)


def test_by_day_tag_key_provider(store: SqliteLedgerStore) -> None:
    by_day = build_report(store, by="day")
    assert [(g["key"], g["requests"]) for g in by_day["groups"]] == [
        ("2026-09-21", 2),
        ("2026-09-22", 2),
    ]
    assert groups(by_day)["2026-09-21"]["cost"] == pytest.approx(0.004)
    tags = groups(build_report(store, by="tag"))
    assert set(tags) == {"team=search", "team=ads", "env=prod", "(untagged)"}
    assert tags["(untagged)"]["requests"] == 2 and tags["(untagged)"]["unpriced"] == 1
    assert tags["env=prod"]["cost"] == pytest.approx(0.003)
    keys = groups(build_report(store, by="key"))
    assert keys["k1"]["requests"] == 2 and keys["k1"]["cost"] == pytest.approx(0.0015)
    assert keys["(no key)"]["unpriced"] == 1
    providers = groups(build_report(store, by="provider"))
    assert providers["openai"]["requests"] == 2 and providers["(none)"]["errors"] == 1


def test_since_filter_and_empty(store: SqliteLedgerStore) -> None:
    report = build_report(store, since=DAY2 - 3600)
    assert report["totals"]["requests"] == 2
    assert report["totals"]["baseline_cost"] is None and report["totals"]["savings_pct"] is None
    empty = build_report(store, since=DAY2 + 86400)
    assert empty["totals"]["requests"] == 0 and empty["groups"] == []
    assert empty["unpriced"] == 0 and empty["warnings"] == []
    with pytest.raises(ValueError, match="cannot group by"):
        build_report(store, by="colour")


def test_render_table(store: SqliteLedgerStore) -> None:
    text = render_table(build_report(store, by="model"))
    assert "WARNING: 1 requests have no known price; their cost is NOT included" in text
    assert "$0.004500" in text and "$0.003000" in text
    header = next(line for line in text.splitlines() if line.startswith("model"))
    assert header.split() == [
        "model", "requests", "errors", "cost", "baseline", "savings", "share", "unpriced",
    ]  # fmt: skip
    assert "unpriced requests: 1" in text


def test_parse_since() -> None:
    now = 1_800_000_000.0
    assert parse_since("1d", now=now) == now - 86400
    assert parse_since("12h", now=now) == now - 12 * 3600
    assert parse_since("30m", now=now) == now - 1800
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    assert (
        parse_since("2026-11-01T10:30:00") == datetime(2026, 11, 1, 10, 30, tzinfo=UTC).timestamp()
    )
    assert (
        parse_since("2026-11-01T10:30:00+02:00")
        == datetime(2026, 11, 1, 8, 30, tzinfo=UTC).timestamp()
    )
    with pytest.raises(ValueError, match="cannot read since"):
        parse_since("yesterday")


def cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="thrifty")
    report_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def test_cli_json(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = cli("report", "--ledger", str(ledger), "--by", "tag", "--json")
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["by"] == "tag" and report["unpriced"] == 1
    assert report["totals"]["cost"] == pytest.approx(0.0045)


def test_cli_table_since(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = cli("report", "--ledger", str(ledger), "--since", "2026-09-22", "--by", "day")
    assert report_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "2026-09-22" in out and "2026-09-21" not in out.split("\n\n", 1)[1]


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.db"
    assert report_cli.run(cli("report", "--ledger", str(missing))) == 2
    assert not missing.exists()  # a report never creates an empty ledger
    assert "no ledger at" in capsys.readouterr().err
    assert report_cli.run(cli("report", "--ledger", str(missing), "--since", "soon")) == 2
    with pytest.raises(SystemExit):
        cli("report")  # --ledger or --config is required


def test_savings_by_technique(tmp_path: Path) -> None:
    store = SqliteLedgerStore(tmp_path / "t.db")
    try:
        store.write_many([
            rec("t1", 1_000.0, savings={"routing": 0.25, "cascade": -0.05}),
            rec("t2", 1_001.0, savings={"routing": 0.5, "exact_cache": 1.0}),
            rec("t3", 1_002.0),
        ])  # fmt: skip
        report = build_report(store)
    finally:
        store.close()
    assert report["by_technique"] == {
        "cascade": pytest.approx(-0.05),
        "exact_cache": pytest.approx(1.0),
        "routing": pytest.approx(0.75),
    }
    assert "savings by cause" in render_table(report)
