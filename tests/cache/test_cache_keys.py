"""Cache keys: every output-changing field is in the key; no-op differences are not."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from thrifty.cache.keys import (
    IGNORED_PARAMS,
    exact_key,
    is_deterministic,
    request_fingerprint,
    semantic_partition,
)

SCOPE = "key-abc"
TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def body(**params: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3 + 3?"},
        ],
        "temperature": 0,
    }
    base.update(params)
    return base


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("model", "gpt-4o"),
        ("temperature", 0.7),
        ("top_p", 0.5),
        ("seed", 7),
        ("n", 2),
        ("stop", ["\n"]),
        ("max_tokens", 16),
        ("max_completion_tokens", 16),
        ("tools", [TOOL]),
        ("tool_choice", "required"),
        ("response_format", {"type": "json_object"}),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 0.5),
        ("logit_bias", {"50256": -100}),
        ("reasoning_effort", "low"),
        ("a_parameter_from_the_future", 1),
    ],
)
def test_each_parameter_changes_the_key(name: str, value: Any) -> None:
    assert exact_key(body(**{name: value}), SCOPE) != exact_key(body(), SCOPE)


def test_parameter_values_change_the_key() -> None:
    keys = {
        exact_key(body(seed=1), SCOPE),
        exact_key(body(seed=2), SCOPE),
        exact_key(body(max_tokens=10), SCOPE),
        exact_key(body(max_completion_tokens=10), SCOPE),
        exact_key(body(response_format={"type": "text"}), SCOPE),
        exact_key(body(response_format={"type": "json_object"}), SCOPE),
    }
    assert len(keys) == 6


def test_a_default_valued_parameter_is_not_the_same_as_absent() -> None:
    without = body()
    del without["temperature"]
    assert exact_key(without, SCOPE) != exact_key(body(temperature=1), SCOPE)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["messages"][0].update(content="Be verbose."),
        lambda b: b["messages"][2].update(content="5"),
        lambda b: b["messages"][3].update(content="And 4 + 4?"),
        lambda b: b["messages"][3].update(name="alice"),
        lambda b: b["messages"][0].update(role="developer"),
        lambda b: b["messages"].pop(0),
        lambda b: b["messages"].append({"role": "assistant", "content": "The answer is"}),
    ],
)
def test_message_changes_change_the_key(change: Any) -> None:
    changed = body()
    change(changed)
    assert exact_key(changed, SCOPE) != exact_key(body(), SCOPE)


def test_tool_call_fields_are_kept() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    turn = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    other_id = copy.deepcopy(turn)
    other_id[2]["tool_call_id"] = "call_2"
    other_args = copy.deepcopy(turn)
    other_args[1]["tool_calls"][0]["function"]["arguments"] = '{"city": "Paris"}'
    keys = {exact_key(body(messages=m), SCOPE) for m in (turn, other_id, other_args)}
    assert len(keys) == 3


def test_key_order_none_fields_and_text_parts_do_not_matter() -> None:
    a = body(tools=[TOOL], response_format={"type": "json_object"}, stop="END")
    b = {
        "stop": ["END"],
        "response_format": {"type": "json_object"},
        "temperature": 0.0,
        "tools": [
            {
                "function": {
                    "parameters": {"properties": {"city": {"type": "string"}}, "type": "object"},
                    "description": "Weather in a city",
                    "name": "weather",
                },
                "type": "function",
            }
        ],
        "top_p": None,
        "seed": None,
        "messages": [
            {"content": "Be brief.", "role": "system", "name": None},
            {"role": "user", "content": [{"type": "text", "text": "What is 2 + 2?"}]},
            {"role": "assistant", "content": "4", "refusal": None, "tool_calls": None},
            {"role": "user", "content": [{"text": "And 3 + 3?", "type": "text"}]},
        ],
        "model": "gpt-4o-mini",
    }
    assert exact_key(a, SCOPE) == exact_key(b, SCOPE)
    assert request_fingerprint(a) == request_fingerprint(b)


def test_several_text_parts_are_not_merged() -> None:
    parts = [{"type": "text", "text": "And 3"}, {"type": "text", "text": " + 3?"}]
    changed = body()
    changed["messages"][3]["content"] = parts
    assert exact_key(changed, SCOPE) != exact_key(body(), SCOPE)


def test_ignored_params_do_not_change_the_key() -> None:
    noisy = body(
        stream=True,
        stream_options={"include_usage": True},
        metadata={"team": "search"},
        user="u-42",
        store=True,
        service_tier="flex",
    )
    assert set(IGNORED_PARAMS) <= set(noisy)
    assert exact_key(noisy, SCOPE) == exact_key(body(), SCOPE)


def test_int_keyed_logit_bias_equals_its_json_form() -> None:
    assert exact_key(body(logit_bias={50256: -100}), SCOPE) == exact_key(
        body(logit_bias={"50256": -100}), SCOPE
    )


def test_scopes_never_share_keys() -> None:
    assert exact_key(body(), "key-a") != exact_key(body(), "key-b")
    assert semantic_partition(body(), "key-a") != semantic_partition(body(), "key-b")


def test_key_shape() -> None:
    key = exact_key(body(), SCOPE)
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key == exact_key(copy.deepcopy(body()), SCOPE)


# -- semantic partition ------------------------------------------------------------------


def test_partition_ignores_only_the_final_user_text() -> None:
    reworded = body()
    reworded["messages"][3]["content"] = "what about three plus three"
    as_parts = body()
    as_parts["messages"][3]["content"] = [{"type": "text", "text": "3+3?"}]
    base = semantic_partition(body(), SCOPE)
    assert semantic_partition(reworded, SCOPE) == base
    assert semantic_partition(as_parts, SCOPE) == base
    assert semantic_partition(body(stream=True, user="x"), SCOPE) == base


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["messages"][0].update(content="Be verbose."),
        lambda b: b["messages"][1].update(content="What is 2 + 3?"),
        lambda b: b["messages"][2].update(content="5"),
        lambda b: b["messages"][3].update(name="alice"),
        lambda b: b.update(model="gpt-4o"),
        lambda b: b.update(temperature=0.3),
        lambda b: b.update(max_tokens=5),
        lambda b: b.update(tools=[TOOL]),
        lambda b: b["messages"].append({"role": "assistant", "content": "Six"}),
        lambda b: b["messages"][3].update(
            content=[
                {"type": "text", "text": "And 3 + 3?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ]
        ),
    ],
)
def test_partition_changes_with_everything_else(change: Any) -> None:
    changed = body()
    change(changed)
    assert semantic_partition(changed, SCOPE) != semantic_partition(body(), SCOPE)


def test_partition_differs_from_exact_key() -> None:
    assert semantic_partition(body(), SCOPE) != exact_key(body(), SCOPE)


def test_partition_without_a_user_message_uses_all_messages() -> None:
    a = body(messages=[{"role": "system", "content": "a"}])
    b = body(messages=[{"role": "system", "content": "b"}])
    assert semantic_partition(a, SCOPE) != semantic_partition(b, SCOPE)


# -- determinism -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"temperature": 0}, True),
        ({"temperature": 0.0}, True),
        ({"temperature": 0, "n": 3}, True),
        ({"top_p": 0}, True),
        ({"temperature": 0.2}, False),
        ({"temperature": 1, "seed": 7}, False),
        ({}, False),  # OpenAI samples at temperature 1 by default
        ({"temperature": None}, False),
        ({"temperature": False}, False),
        ({"temperature": "0"}, False),
    ],
)
def test_is_deterministic(params: dict[str, Any], expected: bool) -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **params}
    assert is_deterministic(request) is expected
