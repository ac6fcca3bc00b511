"""``thrifty replay --key``: replay as a virtual key, with its overrides, models and budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from thrifty.cli.main import main
from thrifty.config import parse_config
from thrifty.governance.keys.identity import Caller
from thrifty.governance.keys.spec import KeySpec
from thrifty.governance.keys.sqlite import SqliteKeyStore
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, write_dataset
from thrifty.replay.simulator import replay

BIG = {"input": 10.0, "output": 30.0}  # USD per million tokens
#: each question twice: the second is an exact-cache hit when the cache is on
RECORDS = [
    ReplayRecord(
        id=f"r{i}-{copy}",
        messages=({"role": "user", "content": f"Question number {i}?"},),
        params={"temperature": 0},
        tags={"app": "demo"},
        answers={"big": RecordedAnswer(text=f"Answer {i}.", quality=1.0)},
    )
    for i in range(5)
    for copy in range(2)
]


def raw_config(keys_path: Path) -> dict[str, Any]:
    return {
        "providers": {"rec": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {"big": {"provider": "rec", "price": BIG}},
        "default_model": "big",
        "baseline_model": "big",
        "cache": {"enabled": True, "store": "memory"},
        "governance": {"keys_path": str(keys_path), "default_max_output_tokens": 100},
    }


def make_key(path: Path, **spec: Any) -> str:
    store = SqliteKeyStore(path)
    try:
        key, _ = store.create(KeySpec.model_validate(spec))
    finally:
        store.close()
    return key.id


def caller_of(path: Path, key_id: str) -> Caller:
    store = SqliteKeyStore(path)
    try:
        key = store.get(key_id)
    finally:
        store.close()
    assert key is not None
    return key.caller()


def test_a_keys_override_changes_the_pipeline_it_is_replayed_through(tmp_path: Path) -> None:
    keys = tmp_path / "keys.db"
    config = parse_config(raw_config(keys), {})
    plain = make_key(keys, owner="plain")
    no_cache = make_key(keys, owner="nocache", overrides={"cache": False})

    as_plain = replay(RECORDS, config, caller_of(keys, plain))
    as_no_cache = replay(RECORDS, config, caller_of(keys, no_cache))
    assert [row.status for row in as_plain + as_no_cache] == ["ok"] * 2 * len(RECORDS)
    hits = [row for row in as_plain if row.cost == 0]
    assert len(hits) == len(RECORDS) // 2, "every second copy is a cache hit"
    assert all(row.cost > 0 for row in as_no_cache), "the key turned the cache off"


def test_a_keys_budget_and_model_list_refuse_as_the_gateway_would(tmp_path: Path) -> None:
    keys = tmp_path / "keys.db"
    config = parse_config(raw_config(keys), {})
    tight = make_key(
        keys, overrides={"cache": False}, budgets=[{"period": "day", "limit_usd": 0.004}]
    )
    rows = replay(RECORDS, config, caller_of(keys, tight))
    refused = [row for row in rows if row.status == "refused"]
    assert 0 < len(refused) < len(RECORDS)
    assert {row.budget for row in refused} == {f"key:{tight}"}
    assert sum(row.cost for row in rows if row.ok) <= 0.004

    raw = raw_config(keys)
    raw["models"]["small"] = {"provider": "rec", "price": {"input": 0.1, "output": 0.2}}
    small_only = make_key(keys, models=["small"])  # the requests go to default_model "big"
    rows = replay(RECORDS, parse_config(raw, {}), caller_of(keys, small_only))
    assert {(row.status, row.error_code) for row in rows} == {("refused", "model_not_allowed")}


def test_rate_limits_are_not_simulated(tmp_path: Path) -> None:
    keys = tmp_path / "keys.db"
    raw = raw_config(keys)
    raw["governance"]["rate_limits"] = {"requests_per_minute": 1}
    config = parse_config(raw, {})
    limited = make_key(keys, requests_per_minute=1)
    rows = replay(RECORDS, config, caller_of(keys, limited))
    assert {row.status for row in rows} == {"ok"}


def test_the_cli_replays_as_a_key_and_names_a_missing_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.db"
    dataset = tmp_path / "d.jsonl"
    write_dataset(RECORDS, dataset)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw_config(keys)))
    key_id = make_key(keys, budgets=[{"period": "day", "limit_usd": 0.004}])
    args = ["replay", "--dataset", str(dataset), "--config", str(cfg), "--json"]
    assert main([*args, "--key", key_id]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["refused_by_budget"] == {f"key:{key_id}": out["refused"]}
    with pytest.raises(SystemExit, match="no virtual key 'key-000000000000'"):
        main([*args, "--key", "key-000000000000"])
