"""Replay yesterday's traffic: gateway (capture on) → ledger → dataset → replay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

from thrifty.cli.main import main
from thrifty.config import parse_config
from thrifty.recordings.dataset import load_dataset
from thrifty.replay.simulator import replay


def test_captured_traffic_replays_at_the_same_cost(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    config = base_config(upstream.url, ledger={"flush_interval_ms": 20, "capture_bodies": True})
    gateway = start_gateway(config)
    prompts = ["Plan a picnic.", "List three rivers.", "Define entropy briefly."]
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY) as client:
        for prompt in prompts:
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": prompt}],
                temperature=0,
                extra_headers={"x-thrifty-tags": "team=docs"},
            )
        # streamed answers are captured too
        list(client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Stream me."}], stream=True
        ))  # fmt: skip
    served = {r["request_id"]: r for r in gateway.requests()}
    out = tmp_path / "yesterday.jsonl"
    assert main(["datasets", "import", "ledger", str(gateway.ledger_path), "-o", str(out)]) == 0
    records = load_dataset(out)
    assert len(records) == 4
    assert {r.tags["team"] for r in records[:3]} == {"docs"}
    assert records[0].params == {"temperature": 0}
    # Replayed as-is (the answering model, no techniques), each costs what it cost.
    replay_config = parse_config(base_config(upstream.url, default_model="gpt-4o-mini"), {})
    for record, outcome in zip(records, replay(records, replay_config), strict=True):
        assert outcome.ok, outcome.error
        assert outcome.cost == pytest.approx(served[record.id]["cost"], rel=1e-9)


def test_ledger_without_capture_explains_itself(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY) as client:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    gateway.flush()
    out = tmp_path / "none.jsonl"
    assert main(["datasets", "import", "ledger", str(gateway.ledger_path), "-o", str(out)]) == 2
    assert "capture_bodies" in capsys.readouterr().err
