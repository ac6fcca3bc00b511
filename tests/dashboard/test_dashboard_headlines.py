"""Failed requests count the same way in every headline (issue 15, item 9): the report,
the dashboard's cards, its spend series and its waterfall all keep
``savings == baseline - cost`` and end at the same spend."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.ledger.test_reports import rec

from thrifty.dashboard.ledger_sql import ledger_sql
from thrifty.dashboard.queries import load_dashboard
from thrifty.ledger import SqliteLedgerStore, build_report
from thrifty.usage import Usage

NOW = time.time()
TS = NOW - 60


RECORDS = [
    rec("routed", TS, model="small", cost=0.001, baseline_model="big", baseline_cost=0.004,
        savings={"routing": 0.003}),
    # a stream cut mid-answer: billed, with the baseline priced on what was streamed
    rec("cut", TS, status="error", http_status=502, cost=0.002, baseline_model="big",
        baseline_cost=0.002, usage=Usage(input_tokens=100, output_tokens=4, estimated=True)),
    # a failed row with a cost but no known baseline (an older ledger): no saving claimed
    rec("legacy", TS, status="error", http_status=502, cost=0.0005, usage=Usage()),
    rec("unpriced", TS, model="mystery", cost=0.0, unpriced=True),
]  # fmt: skip


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteLedgerStore(tmp_path / "ledger.db")
    s.write_many(RECORDS)
    yield s
    s.close()


def test_report_cards_series_and_waterfall_agree(store: SqliteLedgerStore) -> None:
    report = build_report(store)["totals"]
    cost = sum(r.cost for r in RECORDS)
    assert report["cost"] == pytest.approx(cost)
    assert report["savings"] == pytest.approx(0.003)
    assert report["savings"] == pytest.approx(report["baseline_cost"] - report["cost"])
    sql = ledger_sql(store)
    assert sql is not None
    data = load_dashboard(store, sql, "24h", now=NOW)
    cards = data["totals"]
    assert (cards["cost"], cards["baseline_cost"], cards["savings"]) == pytest.approx(
        (report["cost"], report["baseline_cost"], report["savings"])
    )
    series = data["series"]
    assert sum(series["cost"]) == pytest.approx(cost)
    assert sum(series["baseline"]) == pytest.approx(report["baseline_cost"])
    assert sum(series["savings"]) == pytest.approx(report["savings"])
    steps = data["waterfall"]
    assert steps[0]["value"] == pytest.approx(report["baseline_cost"])
    assert [s["label"] for s in steps[1:-1]] == ["routing"], "every saving has a cause"
    assert steps[-1]["value"] == pytest.approx(report["cost"]), "the waterfall ends at spend"
