"""``bench.ledger_audit`` recomputes a ledger with its own code: 0 mismatches on a ledger
that exercised every feature, and it catches a row that does not add up."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bench.ledger_audit import TOKENS, Prices, audit, catalogue_price, load_catalogue, main
from tests.conftest import Gateway, ServerThread
from tests.pipeline.test_savings_attribution import ROWS, drive, everything_config


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
    assert audited == len(rows) == ROWS
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


def test_the_audit_prices_every_catalogue_entry_as_the_gateway_does() -> None:
    """Over the whole bundled catalogue: the audit's own reading (unknown at $0, long-
    context tiers, range-only prices, 1-hour writes, audio and image tokens, per-call fees)
    agrees with ``thrifty.pricing`` on which entries are priced and what a call costs."""
    from thrifty.pricing import PriceCatalogue, cost
    from thrifty.usage import Usage

    catalogue = PriceCatalogue.bundled()
    raw = dict(catalogue.raw())
    shapes = [
        Usage(input_tokens=1_000, output_tokens=200, reasoning_tokens=50),
        Usage(input_tokens=300_000, output_tokens=900, cached_input_tokens=100_000,
              cache_write_tokens=50_000, cache_write_1h_tokens=20_000, audio_input_tokens=7_000,
              image_input_tokens=3_000, audio_output_tokens=40, image_output_tokens=30,
              reasoning_tokens=100),
    ]  # fmt: skip
    compared = tiered = 0
    for name, entry in raw.items():
        mine, theirs = catalogue_price(entry), catalogue.lookup(name)
        if theirs is None or theirs.name != name:
            assert mine is None or theirs is not None, name
            continue
        assert mine is not None, name
        tiered += bool(theirs.tiers)
        for usage in shapes:
            tokens = {k: getattr(usage, k) for k in TOKENS}
            for batch in (False, True):
                want = cost(usage, theirs, batch=batch).total
                assert mine.of(tokens, batch) == pytest.approx(want, rel=1e-12, abs=1e-15), name
        compared += 1
    assert compared > 1000 and tiered > 300
    zero = [n for n, e in raw.items() if catalogue.zero_priced(n)]
    assert zero and all(catalogue_price(raw[n]) is None for n in zero)
