"""``thrifty demo``'s terminal bill and its HTML report show the same numbers for the same
traffic (issue 15, item 11): the report's cards, waterfall and shares are read from the
gateway's ledger (``replay.summary.ledger_summary``), as ``thrifty report`` is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Gateway
from tests.replay.test_replay import RECORDS
from tests.replay.test_replay_baselines import serve

from thrifty.ledger import build_report
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.replay.html import render_html
from thrifty.replay.report import build_report as html_report
from thrifty.replay.summary import ledger_summary


@pytest.mark.slow
def test_the_demo_html_shows_the_terminal_bill(
    tmp_path: Path, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    """Repeats and cache hits included: what the demo sends."""
    cache = {"enabled": True, "path": str(tmp_path / "cache.db")}
    repeated = [*RECORDS, RECORDS[0]]  # a repeat: an exact cache hit
    store = SqliteLedgerStore(serve(tmp_path, start_gateway, repeated, cache=cache))
    try:
        bill = build_report(store)
        summary = ledger_summary(store, "big")
    finally:
        store.close()
    t = bill["totals"]
    assert summary["requests"] == t["requests"] == len(RECORDS) + 1
    assert summary["actual_cost"] == pytest.approx(t["cost"], rel=1e-12)
    assert summary["baseline_cost"] == pytest.approx(t["baseline_cost"], rel=1e-12)
    assert summary["savings_pct"] == pytest.approx(t["savings_pct"], rel=1e-12)
    net = {k: v["net_savings"] for k, v in summary["by_technique"].items() if v["net_savings"]}
    assert net == pytest.approx(bill["by_technique"])
    assert set(net) == {"default_model", "exact_cache"}
    assert summary["unattributed_savings"] == pytest.approx(0.0, abs=1e-15)
    page = render_html(html_report("demo", summary))
    assert f"{t['savings_pct']:.1f}%" in page
