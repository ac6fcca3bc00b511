"""The worst cost of one call counts the tries that may time out before the answer: a
timed-out try is billed its prompt (issue 15, item 7), so the reservation must hold it."""

from __future__ import annotations

import pytest

from thrifty.config.schema import ThriftyConfig
from thrifty.pipeline.prices import call_cost
from thrifty.registry import ModelRegistry

PROMPT, ANSWER = 1_000, 100
BODY = {"max_tokens": ANSWER}


def registry() -> ModelRegistry:
    config = ThriftyConfig.model_validate({
        "providers": {"a": {"base_url": "http://127.0.0.1:9/v1"},
                      "b": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {
            "dear": {"deployments": [{"provider": "a", "model": "x"},
                                     {"provider": "b", "model": "x"}],
                     "price": {"input": 10, "output": 30, "per_request_usd": 0.01},
                     "fallbacks": ["cheap"]},
            "cheap": {"provider": "a", "model": "y", "price": {"input": 1, "output": 2}},
        },
    })  # fmt: skip
    return ModelRegistry.from_config(config)


TIMED_OUT_DEAR = PROMPT * 10e-6 + 0.01  # a timed-out try: its prompt and the fee
TIMED_OUT_CHEAP = PROMPT * 1e-6
ANSWER_DEAR = PROMPT * 10e-6 + ANSWER * 30e-6 + 0.01
ANSWER_CHEAP = PROMPT * 1e-6 + ANSWER * 2e-6


def test_one_try_per_deployment_still_moves_on_to_the_next() -> None:
    """dear's first deployment may time out before its second answers, or both before
    cheap answers."""
    worst = max(TIMED_OUT_DEAR + ANSWER_DEAR, 2 * TIMED_OUT_DEAR + ANSWER_CHEAP)
    assert call_cost(registry(), "dear", PROMPT, BODY, 0) == pytest.approx(worst, rel=1e-12)
    assert call_cost(registry(), "cheap", PROMPT, BODY, 0) == pytest.approx(ANSWER_CHEAP, rel=1e-12)


def test_every_try_before_the_answer_may_time_out() -> None:
    """3 tries on each of dear's 2 deployments, then cheap's: the worst is all six of
    dear's timing out (prompt + fee each) and cheap answering after 2 of its own."""
    worst = max(5 * TIMED_OUT_DEAR + ANSWER_DEAR,
                6 * TIMED_OUT_DEAR + 2 * TIMED_OUT_CHEAP + ANSWER_CHEAP)  # fmt: skip
    got = call_cost(registry(), "dear", PROMPT, BODY, 0, tries=3)
    assert got == pytest.approx(worst, rel=1e-12)
    # a provider batch line is one call: no retries, no fallbacks
    batch_line = call_cost(registry(), "dear", PROMPT, BODY, 0, tries=3, batch=True)
    assert batch_line == pytest.approx(ANSWER_DEAR, rel=1e-12)
