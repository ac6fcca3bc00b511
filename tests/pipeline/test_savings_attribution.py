"""Every dollar of baseline − cost belongs to a named cause (issue 15, item 8).

One real gateway with every technique on (exact and semantic cache, compression,
routing, the batching window, a cascade, fallbacks, a default model, the test upstream's
simulated prompt cache, an Anthropic provider whose prompt cache the gateway marks),
driven with the openai SDK (chat, Responses, legacy completions) and the anthropic SDK
(Messages); among the models, long-context and range-tiered prices, per-call fees and a
free model; then every ledger row is checked: ``sum(savings) == baseline_cost - cost``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from tests.compression.test_compression_gateway import conversation
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config
from tests.governance.test_budgets_gateway import price

from thrifty.pipeline.attribution import CAUSES

QUESTION = [{"role": "user", "content": "Explain why the sky is blue."}]
RANGED = "dashscope/qwen3-max"  # priced only by tiered_pricing ranges (dearer from 32k)
TIERED = "kyma/qwen3.7-flash"  # input_cost_per_token_above_32k_tokens
ONLINE = "perplexity/sonar-small-online"  # input_cost_per_request, $0 input tokens
CLAUDE = "claude-haiku-4-5"  # kind: anthropic, prompt cache written and read
ROWS = 25


def everything_config(upstream: ServerThread, tmp_path: Path) -> dict[str, Any]:
    fault = f"timeout;times=1;id={uuid.uuid4().hex};seconds=3"
    config = base_config(upstream.url, default_model="gpt-4o-mini", baseline_model="gpt-4o")
    url = f"{upstream.url}/v1"
    config["providers"].update({
        "cutting": {"base_url": url, "headers": {"x-upstream-fault": "cut;after=3"}},
        "slow": {"base_url": url, "timeout_s": 0.3, "headers": {"x-upstream-fault": fault}},
    })  # fmt: skip
    config["providers"]["claude"] = {"base_url": url, "kind": "anthropic"}
    fee = {"input": 0.5, "output": 1.5, "per_request_usd": 0.002}
    config["models"].update({
        "cutting": {"provider": "cutting", "model": "gpt-4o"},
        "slow": {"provider": "slow", "model": "gpt-4o-mini"},
        # prices the audit must read: ranges only, a tier above 32k, fees, free, a cache
        "ranged": {"provider": "up", "model": "gpt-4o-mini", "catalogue_name": RANGED},
        "tiered": {"provider": "up", "model": "gpt-4o-mini", "catalogue_name": TIERED},
        "fee": {"provider": "up", "model": "gpt-4o-mini", "price": fee},
        "online": {"provider": "up", "model": "gpt-4o-mini", "catalogue_name": ONLINE},
        "free": {"provider": "up", "model": "gpt-4o-mini", "free": True},
        CLAUDE: {"provider": "claude"},
    })  # fmt: skip
    chain = ["gpt-4o-mini", "gpt-4o"]
    # loose on purpose (no pair check), so only the greedy requests meant to meet are eligible:
    # every other request shares a tag that would make them semantic neighbours
    semantic = {
        "enabled": True, "threshold": 0.8, "pair_check": {"enabled": False}, "max_temperature": 0,
    }  # fmt: skip
    tasks = {t: chain for t in ("chat", "code", "math", "creative", "extraction")}
    config.update({
        "cache": {"enabled": True, "path": str(tmp_path / "cache.db"), "semantic": semantic},
        "compression": {"enabled": True, "min_tokens": 300},
        "routing": {"enabled": True, "strategy": "rules", "candidates": chain, "tasks": tasks},
        "batching": {"enabled": True, "packing": {"max_batch_size": 2},
                     "window": {"enabled": True, "window_ms": 5000}},
        "cascade": {"enabled": True, "tiers": [
            {"model": "gpt-4o-mini", "checks": ["heuristics"], "threshold": 0.5},
            {"model": "gpt-4o"}]},
    })  # fmt: skip
    return config


def sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)


def long_prompt(tag: str, question: str) -> list[dict[str, Any]]:
    """A prompt over the provider's 1024-token caching minimum; same ``tag``, same prefix."""
    system = f"Reference notes {tag}. " + " ".join(f"fact{i} is {i * 7}." for i in range(500))
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


async def windowed(gateway: Gateway, tag: str) -> list[Any]:
    async with openai.AsyncOpenAI(
        base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0
    ) as client:
        calls = [
            client.chat.completions.with_raw_response.create(
                model="gpt-4o",
                messages=[
                    {"role": "system", "content": f"Be brief. ({tag})"},
                    {"role": "user", "content": f"Name the {word} planet from the sun."},
                ],
                extra_headers={"x-thrifty-batch": "window"},
            )
            for word in ("third", "fifth")
        ]
        return list(await asyncio.gather(*calls))


def drive(gateway: Gateway) -> dict[str, Any]:
    """One request per feature (some twice); returns the raw responses by name."""
    tag = uuid.uuid4().hex
    off = {"x-thrifty-compress": "off"}
    out: dict[str, Any] = {}
    with sdk(gateway) as client:
        create = client.chat.completions.with_raw_response.create
        out["routed"] = create(model="auto", messages=QUESTION, temperature=0)
        out["exact_hit"] = create(model="auto", messages=QUESTION, temperature=0)
        asked = [{"role": "user", "content": "What is the capital city of Peru?"}]
        out["asked"] = create(model="auto", messages=asked, temperature=0)
        paraphrase = [{"role": "user", "content": "Tell me the capital city of Peru."}]
        out["semantic_hit"] = create(model="auto", messages=paraphrase, temperature=0)
        out["escalated"] = create(
            model="auto", messages=[{"role": "user", "content": f"Describe rain. {tag}"}],
            max_tokens=3, extra_headers={"x-thrifty-route": "gpt-4o-mini"},
        )  # fmt: skip
        out["fallback"] = create(
            model="auto", messages=[{"role": "user", "content": f"Describe snow. {tag}"}],
            extra_headers={"x-thrifty-route": "dead-model"},
        )  # fmt: skip
        out["default"] = create(
            model="auto", messages=[{"role": "user", "content": f"Describe hail. {tag}"}],
            extra_headers={"x-thrifty-route": "off", "x-thrifty-cascade": "off"},
        )  # fmt: skip
        out["compressed"] = create(model="gpt-4o", messages=conversation(), temperature=0)
        create(model="gpt-4o", messages=long_prompt(tag, "What is fact3?"), extra_headers=off)
        out["prompt_cached"] = create(
            model="gpt-4o", messages=long_prompt(tag, "What is fact9?"), extra_headers=off
        )
        out["timed_out"] = create(model="slow", messages=QUESTION)
        cut = create(model="cutting", messages=QUESTION, stream=True)
        with pytest.raises(openai.APIError):
            for _ in cut.parse():
                pass
        out["cut"] = cut
    out["batched"] = asyncio.run(windowed(gateway, tag))
    out.update(drive_prices(gateway, tag))
    out.update(drive_dialects(gateway, tag))
    return out


def drive_prices(gateway: Gateway, tag: str) -> dict[str, Any]:
    """Requests to the models whose prices the old rules got wrong, and Anthropic's cache."""
    off = {"x-thrifty-compress": "off"}
    huge = long_prompt(tag, "What is fact7?")
    huge[0]["content"] *= 12  # over 32k tokens: the dearer tier of both tiered models
    out: dict[str, Any] = {}
    with sdk(gateway) as client:
        create = client.chat.completions.with_raw_response.create
        for model in ("ranged", "tiered"):
            out[model] = create(model=model, messages=huge, max_tokens=20, extra_headers=off)
        for model in ("fee", "online", "free"):
            asked = [{"role": "user", "content": f"Describe {model} tea. {tag}"}]
            out[model] = create(model=model, messages=asked)
        for n, question in enumerate(("First?", "Second?", "Third?")):
            out[f"claude{n}"] = create(
                model=CLAUDE, messages=long_prompt(tag, question), extra_headers=off
            )
    return out


def drive_dialects(gateway: Gateway, tag: str) -> dict[str, Any]:
    """The same accounting for Responses, legacy completions and Messages requests."""
    out: dict[str, Any] = {}
    with sdk(gateway) as client:
        out["responses"] = client.responses.with_raw_response.create(
            model="auto", input=f"Why do leaves fall? {tag}"
        )
        out["completions"] = client.completions.with_raw_response.create(
            model="gpt-4o", prompt=f"Once upon a time {tag}", max_tokens=20
        )
    with anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0) as claude:
        out["messages"] = claude.messages.with_raw_response.create(
            model="gpt-4o", max_tokens=30,
            messages=[{"role": "user", "content": f"Why is snow white? {tag}"}],
        )  # fmt: skip
    return out


def rid(raw: Any) -> str:
    return str(raw.headers["x-thrifty-request-id"])


@pytest.mark.slow
def test_every_row_splits_baseline_minus_cost_into_named_causes(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(everything_config(upstream, tmp_path))
    sent = drive(gateway)
    rows = gateway.requests()
    assert len(rows) == ROWS
    seen: set[str] = set()
    for row in rows:
        assert row["baseline_cost"] is not None, row
        gap = row["baseline_cost"] - row["cost"] - sum(row["savings"].values())
        assert abs(gap) <= 1e-12 * max(1.0, row["baseline_cost"]), (row["request_id"], gap, row)
        assert set(row["savings"]) <= set(CAUSES), row["savings"]
        seen |= set(row["savings"])
    assert seen == set(CAUSES), f"causes never exercised: {set(CAUSES) - seen}"

    def row(name: str) -> dict[str, Any]:
        return gateway.row(rid(sent[name]))

    assert row("exact_hit")["savings"] == {"exact_cache": row("exact_hit")["baseline_cost"]}
    assert set(row("semantic_hit")["savings"]) == {"semantic_cache"}
    assert set(row("compressed")["savings"]) == {"compression"}
    # the provider's automatic prefix cache is not Thrifty's doing: the baseline has it too
    cached = row("prompt_cached")
    assert cached["cached_input_tokens"] > 0 and "prompt_cache" not in cached["techniques"]
    assert cached["savings"] == {} and cached["baseline_cost"] == pytest.approx(cached["cost"])
    default = row("default")
    assert default["model"] == "gpt-4o-mini" and set(default["savings"]) == {"default_model"}
    for raw in sent["batched"]:
        assert row_of(gateway, raw)["techniques"]["batch"]["mode"] == "packed"
        assert "batching" in row_of(gateway, raw)["savings"]
    for name in ("timed_out", "cut"):  # the caller would have met the same failure
        assert row(name)["savings"] == {} and row(name)["baseline_cost"] == row(name)["cost"]
    assert row("cut")["status"] == "error" and row("cut")["cost"] > 0
    for name in ("ranged", "tiered"):
        assert row(name)["input_tokens"] > 32_000 and row(name)["cost"] > 0
    assert row("online")["cost"] >= 0.005  # the catalogue's fee per call
    assert row("free")["cost"] == 0 and not row("free")["unpriced"]
    written, read = row("claude1"), row("claude2")
    assert written["cache_write_tokens"] > 0 and written["savings"]["prompt_cache"] < 0
    assert read["cached_input_tokens"] > 0 and read["savings"]["prompt_cache"] > 0
    for name in ("responses", "completions", "messages"):  # dialects of the chat pipeline
        assert row(name)["status"] == "ok" and row(name)["cost"] > 0
    assert row("responses")["techniques"]["route"] and row("responses")["savings"]


def row_of(gateway: Gateway, raw: Any) -> dict[str, Any]:
    return gateway.row(rid(raw))


@pytest.mark.slow
def test_routing_is_credited_only_when_its_pick_answered(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(everything_config(upstream, tmp_path))
    tag = uuid.uuid4().hex
    with sdk(gateway) as client:
        create = client.chat.completions.with_raw_response.create
        routed = create(model="auto", messages=[{"role": "user", "content": f"Hi {tag}"}],
                        extra_headers={"x-thrifty-cascade": "off"})  # fmt: skip
        failed_over = create(
            model="auto", messages=[{"role": "user", "content": f"Describe fog. {tag}"}],
            extra_headers={"x-thrifty-route": "dead-model"},
        )  # fmt: skip
    row = row_of(gateway, routed)
    assert row["model"] == "gpt-4o-mini" and row["techniques"]["route"]["model"] == "gpt-4o-mini"
    assert row["savings"] == {"routing": pytest.approx(row["baseline_cost"] - row["cost"])}
    row = row_of(gateway, failed_over)
    assert row["techniques"]["route"]["model"] == "dead-model" and row["model"] == "gpt-4o-mini"
    # dead-model is priced as gpt-4o: the cheaper fallback saved it, not routing
    assert "routing" not in row["savings"] and row["savings"]["fallback"] > 0


@pytest.mark.slow
def test_an_escalation_costs_the_cascade_only_its_rejected_attempt(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    """Routing picks the cheap tier, the cascade rejects its answer and gpt-4o answers:
    the cascade's loss is the rejected call, routing gets nothing (its pick did not answer)."""
    gateway = start_gateway(everything_config(upstream, tmp_path))
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": f"Describe wind. {uuid.uuid4()}"}],
            max_tokens=3, extra_headers={"x-thrifty-route": "gpt-4o-mini"},
        )  # fmt: skip
    row = row_of(gateway, raw)
    attempts = gateway.attempts(row["request_id"])
    assert [(a["model"], a["purpose"]) for a in attempts] == [
        ("gpt-4o-mini", "cascade"),
        ("gpt-4o", "main"),
    ]
    assert row["model"] == "gpt-4o" and row["baseline_model"] == "gpt-4o"
    assert row["savings"] == {"cascade": pytest.approx(-attempts[0]["cost"], rel=1e-12)}


@pytest.mark.slow
def test_an_accepted_cheap_answer_is_the_cascades_saving(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    config = everything_config(upstream, tmp_path)
    config["routing"]["enabled"] = False
    gateway = start_gateway(config)
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": f"Name a colour. {uuid.uuid4()}"}]
        )
    row = row_of(gateway, raw)
    assert row["techniques"]["cascade"]["accepted"] == "gpt-4o-mini"
    assert row["savings"] == {"cascade": pytest.approx(row["baseline_cost"] - row["cost"])}
    assert row["savings"]["cascade"] > 0


def test_overhead_causes_agree_with_the_technique_table() -> None:
    """A purpose the table calls a technique's overhead is booked against that technique
    (the cache's two causes both belong to the ``cache`` row)."""
    from thrifty.pipeline.attribution import overhead_cause
    from thrifty.techniques import OVERHEAD_PURPOSES

    owner = {"exact_cache": "cache", "semantic_cache": "cache"}
    for purpose, technique in OVERHEAD_PURPOSES.items():
        cause = overhead_cause(purpose)
        assert cause in CAUSES and owner.get(cause, cause) == technique, purpose


@pytest.mark.slow
def test_a_billed_failure_of_the_routed_model_is_routings_loss(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    """The caller, sending as is to gpt-4o, would never have met the routed model's
    timeout: it is not in the baseline but booked against routing."""
    gateway = start_gateway(everything_config(upstream, tmp_path))
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": f"Describe dew. {uuid.uuid4()}"}],
            extra_headers={"x-thrifty-route": "slow", "x-thrifty-cascade": "off"},
        )  # fmt: skip
    row = row_of(gateway, raw)
    attempts = gateway.attempts(row["request_id"])
    assert [(a["model"], a["purpose"], a["status"]) for a in attempts] == [
        ("slow", "main", "error"),
        ("slow", "retry", "ok"),
    ]
    timed_out, answer = attempts
    assert timed_out["cost"] > 0 and row["baseline_model"] == "gpt-4o"
    # the answer's tokens at gpt-4o's prices, nothing for the timeout
    input_price, output_price = price("gpt-4o")
    served = answer["input_tokens"] * input_price + answer["output_tokens"] * output_price
    assert row["baseline_cost"] == pytest.approx(served, rel=1e-12)
    assert set(row["savings"]) == {"routing"}
    assert row["savings"]["routing"] == pytest.approx(
        row["baseline_cost"] - answer["cost"] - timed_out["cost"], rel=1e-12
    )
