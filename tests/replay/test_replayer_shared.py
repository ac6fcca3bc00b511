"""Replays sharing one set of replay providers (``Replayer``, as ``thrifty tune`` does)
give exactly the outcomes of replays with providers of their own.

A slice of the shipped arena set under the arena example (routing, cascade, exact
cache) and two single-model baselines, each replayed twice through one ``Replayer``:
the second time every reply comes from the providers' memo."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import yaml

from thrifty.config import parse_config
from thrifty.providers.replay import ReplayProvider
from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.replay.simulator import Replayer, RowOutcome, replay, without_techniques

EXAMPLES = Path(__file__).parents[2] / "examples"
TIMINGS = re.compile(rb'"(?:decision|check)_ms":[0-9.e-]+')  # wall-clock, not results


def _canonical(outcomes: list[RowOutcome]) -> bytes:
    return TIMINGS.sub(b"", orjson.dumps(outcomes, option=orjson.OPT_SORT_KEYS))


def test_shared_providers_replay_like_fresh_ones() -> None:
    records = load_dataset(bundled_dataset())[:40]
    raw = yaml.safe_load((EXAMPLES / "arena.yaml").read_text())
    tuned = parse_config(raw, {}, EXAMPLES)
    configs = [
        tuned,
        without_techniques(tuned, "mistralai/Mixtral-8x7B-Instruct-v0.1"),
        without_techniques(tuned, "gpt-4-1106-preview"),
    ]
    shared = Replayer(records)
    for config in configs:
        fresh = _canonical(replay(records, config))
        assert _canonical(shared(config)) == fresh
        assert _canonical(shared(config)) == fresh  # all from the memo now
    assert any(o.ok for o in replay(records, configs[0]))


def test_a_remembered_reply_is_a_new_object_with_the_same_content() -> None:
    records = load_dataset(bundled_dataset())[:5]
    provider = ReplayProvider("rec", records)
    model = next(iter(records[0].answers))
    body = {"model": model, "messages": [dict(m) for m in records[0].messages]}

    def send(request: dict[str, Any]) -> dict[str, Any]:
        return asyncio.run(provider.send("chat/completions", request)).body

    first, second = send(body), send(dict(body))
    first.pop("created"), second.pop("created")
    assert first == second
    assert first is not second and first["usage"] is not second["usage"]
    assert first["choices"] is not second["choices"]
    with_logprobs = {**body, "logprobs": True, "top_logprobs": 2}
    third, fourth = send(with_logprobs), send(with_logprobs)
    assert third["choices"][0]["logprobs"] == fourth["choices"][0]["logprobs"]
