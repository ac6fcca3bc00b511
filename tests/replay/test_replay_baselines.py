"""One baseline, the same in the live ledger and in replay (issue 15, item 10).

The same recorded traffic is replayed and served by a real gateway (the test upstream
answering from the same recordings): replay's ``baseline_cost`` is what the gateway's
ledger books, and its savings by cause are the ledger's. The baseline model's own
answers are a second number, named apart (``baseline_replayed_cost``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread
from tests.replay.test_replay import BIG, RECORDS, SMALL

from thrifty.config import parse_config
from thrifty.ledger import build_report
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.recordings.dataset import ReplayRecord, write_dataset
from thrifty.replay.simulator import replay, without_techniques
from thrifty.replay.summary import summarize
from thrifty.upstream.app import UpstreamOptions, build_upstream_app


def config(upstream_url: str) -> dict[str, Any]:
    return {
        "auth": {"keys": [GATEWAY_KEY]},
        "providers": {"rec": {"base_url": f"{upstream_url}/v1"}},
        "models": {
            "big": {"provider": "rec", "price": BIG},
            "small": {"provider": "rec", "price": SMALL},
        },
        "default_model": "small",
        "baseline_model": "big",
        "ledger": {"flush_interval_ms": 20},
    }


def serve(
    tmp_path: Path,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    records: list[ReplayRecord],
    **sections: Any,
) -> Path:
    """Send ``records`` (no model named) through a gateway whose upstream answers from
    ``RECORDS``' recordings; returns the ledger's path."""
    dataset = tmp_path / "tiny.jsonl"
    write_dataset(RECORDS, dataset)
    with ServerThread(build_upstream_app(UpstreamOptions(dataset=dataset))) as upstream:
        gateway = start_gateway({**config(upstream.url), **sections})
        with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as c:
            for record in records:
                c.chat.completions.create(
                    model="auto", messages=list(record.messages), temperature=0
                )
        gateway.flush()
    return gateway.ledger_path


@pytest.mark.slow
def test_replay_promises_what_the_ledger_books(
    tmp_path: Path, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    store = SqliteLedgerStore(serve(tmp_path, start_gateway, list(RECORDS)))
    try:
        live = build_report(store)
    finally:
        store.close()
    settings = parse_config(config("http://127.0.0.1:9"), {})
    summary = summarize(
        replay(RECORDS, settings), replay(RECORDS, without_techniques(settings, "big")), "big"
    )
    assert summary["compared_requests"] == live["totals"]["requests"] == len(RECORDS)
    assert summary["actual_cost"] == pytest.approx(live["totals"]["cost"], rel=1e-12)
    assert summary["baseline_cost"] == pytest.approx(live["totals"]["baseline_cost"], rel=1e-12)
    booked = {k: v for k, v in live["by_technique"].items() if v}
    replayed = {k: t["net_savings"] for k, t in summary["by_technique"].items() if t["net_savings"]}
    assert replayed == pytest.approx(booked, rel=1e-12) and set(booked) == {"default_model"}
    # big's own answers are longer here: a different number, and named so
    assert summary["baseline_replayed_cost"] != pytest.approx(summary["baseline_cost"])

