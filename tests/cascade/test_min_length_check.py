"""``min_length``: "an answer shorter than N characters escalates", for any prompt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

from thrifty.cascade.checks import build_checks

SHORT_QUESTION = [{"role": "user", "content": "Capital of France?"}]  # no "explain"


def answer(text: str | None, **message: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"content": text, **message}, "finish_reason": "stop"}]}


def test_a_short_answer_to_any_question_fails_hard() -> None:
    (check,) = build_checks([{"name": "min_length", "chars": 20}])
    request = {"messages": SHORT_QUESTION}
    short = asyncio.run(check(request, answer("Paris."), None))
    assert short is not None and short.hard_fail and short.reason == "too short: 6 chars < 20"
    long = asyncio.run(check(request, answer("Paris is the capital of France."), None))
    assert long is not None and long.score == 1.0 and not long.hard_fail
    tool = answer(None, tool_calls=[{"id": "1", "type": "function"}])
    assert asyncio.run(check(request, tool, None)) is None, "a tool call has no text to measure"
    # the heuristics check would accept the short answer to this short factual question
    (heuristics,) = build_checks(["heuristics"])
    verdict = asyncio.run(heuristics(request, answer("Paris."), None))
    assert verdict is not None and verdict.score == 1.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "min_length"}, "'chars' must be >= 1"),
        ({"name": "min_length", "chars": 2.5}, "whole number"),
        ({"name": "min_length", "chars": 5, "char": 5}, "unknown option 'char'"),
    ],
)
def test_bad_options_are_named(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_checks([spec])


@pytest.mark.slow
def test_the_gateway_escalates_short_answers(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    def cascade(chars: int) -> dict[str, Any]:
        config = base_config(upstream.url, default_model="gpt-4o", baseline_model="gpt-4o")
        config["cascade"] = {
            "enabled": True,
            "tiers": [
                {"model": "gpt-4o-mini", "checks": [{"name": "min_length", "chars": chars}]},
                {"model": "gpt-4o"},
            ],
        }
        return config

    served = []
    for chars in (1, 100_000):
        gateway = start_gateway(cascade(chars))
        with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=SHORT_QUESTION
            )
        tier = gateway.row(raw.headers["x-thrifty-request-id"])["techniques"]["cascade"]["tiers"][0]
        served.append((raw.headers["x-thrifty-model"], tier["accepted"]))
        assert "min_length" in tier["reason"] or tier["accepted"]
    assert served == [("gpt-4o-mini", True), ("gpt-4o", False)]
