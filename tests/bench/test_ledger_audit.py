"""``bench.ledger_audit`` recomputes a ledger with its own code: 0 mismatches on a ledger
that exercised every feature, and it catches a row that does not add up."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bench.ledger_audit import Prices, audit, load_catalogue, main
from tests.conftest import Gateway, ServerThread
from tests.pipeline.test_savings_attribution import drive, everything_config


@pytest.mark.slow
def test_every_feature_audits_clean_and_a_tampered_row_is_caught(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = everything_config(upstream, tmp_path)
    gateway = start_gateway(config)
    drive(gateway)
    rows = gateway.requests()
    prices = Prices(load_catalogue(None), config)
    audited, mismatches = audit(gateway.ledger_path, prices)
    assert audited == len(rows) == 14
    assert mismatches == []

    victim = next(r for r in rows if r["savings"].get("routing"))
    with sqlite3.connect(gateway.ledger_path) as conn:
        conn.execute(
            "UPDATE attempts SET cost = cost * 2 WHERE request_id = ?", (victim["request_id"],)
        )
    _, mismatches = audit(gateway.ledger_path, prices)
    assert mismatches and all(m.startswith(victim["request_id"]) for m in mismatches)
    assert any("attempt 0" in m for m in mismatches)
    assert main(["--ledger", str(gateway.ledger_path)]) == 1
    assert f"audited {len(rows)} requests" in capsys.readouterr().out
