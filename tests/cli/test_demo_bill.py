"""``thrifty demo``'s terminal bill and its HTML report show the same numbers for the same
traffic (issue 15, item 11): the report's cards, waterfall and shares are read from the
gateway's ledger (``replay.summary.ledger_summary``), as ``thrifty report`` is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread
from tests.replay.test_replay import RECORDS
from tests.replay.test_replay_baselines import config

from thrifty.ledger import build_report
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.recordings.dataset import write_dataset
from thrifty.replay.html import render_html
from thrifty.replay.report import build_report as html_report
from thrifty.replay.summary import ledger_summary
from thrifty.upstream.app import UpstreamOptions, build_upstream_app


@pytest.mark.slow
def test_the_demo_html_shows_the_terminal_bill(
    tmp_path: Path, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    """Repeats and cache hits included: what the demo sends."""

    dataset = tmp_path / "tiny.jsonl"
    write_dataset(RECORDS, dataset)
    settings = config("")
    settings["cache"] = {"enabled": True, "path": str(tmp_path / "cache.db")}
    with ServerThread(build_upstream_app(UpstreamOptions(dataset=dataset))) as upstream:
        settings["providers"]["rec"]["base_url"] = f"{upstream.url}/v1"
        gateway = start_gateway(settings)
        with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as c:
            for record in [*RECORDS, RECORDS[0]]:  # a repeat: an exact cache hit
                c.chat.completions.create(
                    model="auto", messages=list(record.messages), temperature=0
                )
        gateway.flush()
    store = SqliteLedgerStore(gateway.ledger_path)
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
