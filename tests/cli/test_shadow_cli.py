"""``thrifty shadow status`` and ``thrifty tune --from-ledger`` on a ledger the gateway
filled with shadow evaluations of arena prompts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread
from tests.shadow.shadow_arena import BASELINE, CHEAP, arena_config, settle

from thrifty.cli.main import main
from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.upstream.app import UpstreamOptions, build_upstream_app


@pytest.fixture
def shadowed_ledger(
    start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> tuple[Path, Path]:
    records = [r for r in load_dataset(bundled_dataset()) if r.answers.get(BASELINE)][:24]
    with ServerThread(build_upstream_app(UpstreamOptions(dataset=bundled_dataset()))) as up:
        config = arena_config(up.url, candidates=CHEAP[:2])
        gateway = start_gateway(config)
        client = openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
        for record in records:
            client.chat.completions.create(model=BASELINE, messages=list(record.messages))
        settle(gateway)
        gateway.server.stop()
    path = tmp_path / "thrifty.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, gateway.ledger_path


def test_status_counts_spend_and_projects_savings(
    shadowed_ledger: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, ledger = shadowed_ledger
    out = tmp_path / "tuned.yaml"
    args = ["shadow", "status", "--config", str(config), "--ledger", str(ledger), "--json"]
    assert main([*args, "--ready-width", "100", "--out", str(out)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["shadowed_requests"] == 24
    assert set(status["models"]) == set(CHEAP[:2])
    assert all(m["samples"] + m["errors"] == 24 for m in status["models"].values())
    assert status["spend_usd"] > 0
    projection = status["projection"]
    low, high = projection["savings_pct_ci"]
    assert low <= projection["savings_pct"] <= high and projection["ready"]
    assert out.exists() and "Tuned by `thrifty tune`" in out.read_text()

    assert main(["shadow", "status", "--config", str(config), "--ledger", str(ledger)]) == 0
    text = capsys.readouterr().out
    assert "shadow spend" in text and "projected at quality retained" in text


def test_tune_from_ledger_writes_a_config_for_review(
    shadowed_ledger: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config, ledger = shadowed_ledger
    raw = yaml.safe_load(config.read_text())
    raw["routing"] = {"enabled": True, "strategy": "threshold", "classifier": "learned",
                      "candidates": [BASELINE, *CHEAP[:2]]}  # fmt: skip
    raw["shadow"]["enabled"] = False
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "tuned.yaml"
    args = ["tune", "--from-ledger", str(ledger), "--config", str(config), "--out", str(out)]
    assert main([*args, "--folds", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["held_out"]["rows"] > 0
    tuned = yaml.safe_load(out.read_text())
    assert tuned["routing"]["enabled"] is True
    # the printed summary: rounded figures (no raw floats such as 9.589498850744471)
    assert main([*args, "--folds", "3"]) == 0
    printed = capsys.readouterr().out
    assert "held-out 3-fold estimate" in printed
    margin = result["held_out"]["margin_z"]
    assert f"safety margin: {margin:g} standard errors" in printed
    assert re.search(r"\d\.\d{5,}", printed) is None, printed
