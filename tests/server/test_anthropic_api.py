"""``POST /v1/messages`` through the real gateway and test upstream, with the anthropic SDK."""

from __future__ import annotations

import anthropic
import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, http

TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def client(gateway: Gateway, key: str = GATEWAY_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def test_message_is_the_chat_answer_with_anthropic_usage(
    gateway: Gateway, upstream: ServerThread
) -> None:
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x") as direct:
        expected = direct.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Name a prime number."},
            ],
        )
    with client(gateway) as claude:
        raw = claude.messages.with_raw_response.create(
            model="gpt-4o-mini",
            max_tokens=200,
            system="Be brief.",
            messages=[{"role": "user", "content": "Name a prime number."}],
        )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].text == expected.choices[0].message.content
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == expected.usage.prompt_tokens
    assert message.usage.output_tokens == expected.usage.completion_tokens
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["status"] == "ok" and row["output_tokens"] == message.usage.output_tokens


def test_tools_round_trip(gateway: Gateway) -> None:
    with client(gateway) as claude:
        first = claude.messages.create(
            model="gpt-4o-mini",
            max_tokens=200,
            tools=[TOOL],
            messages=[{"role": "user", "content": "Weather in Paris?"}],
        )
        use = first.content[0]
        assert first.stop_reason == "tool_use" and use.type == "tool_use"
        assert use.name == "get_weather" and use.input == {}
        second = claude.messages.create(
            model="gpt-4o-mini",
            max_tokens=200,
            tools=[TOOL],
            tool_choice={"type": "none"},
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [use.model_dump()]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
                },
            ],
        )
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"


def test_stream_events_and_final_message(gateway: Gateway) -> None:
    with client(gateway) as claude:
        with claude.messages.stream(
            model="gpt-4o-mini",
            max_tokens=300,
            messages=[{"role": "user", "content": "Tell me a story."}],
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_message()
        plain = claude.messages.create(
            model="gpt-4o-mini",
            max_tokens=300,
            messages=[{"role": "user", "content": "Tell me a story."}],
        )
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert {
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
    } <= set(kinds)
    assert final.content[0].text == plain.content[0].text
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.stop_reason == "end_turn"


def test_x_api_key_and_bearer_both_authenticate(gateway: Gateway) -> None:
    body = {
        "model": "gpt-4o-mini",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
    }
    url = f"{gateway.url}/v1/messages"
    for headers in ({"x-api-key": GATEWAY_KEY}, {"authorization": f"Bearer {GATEWAY_KEY}"}):
        status, _, payload = http(
            "POST", url, body, {**headers, "content-type": "application/json"}
        )
        assert status == 200 and payload["type"] == "message"
    with (
        client(gateway, "wrong-key") as claude,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        claude.messages.create(**body)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "authentication_error"


def test_errors_are_in_anthropic_shape(gateway: Gateway) -> None:
    url = f"{gateway.url}/v1/messages"
    headers = {"x-api-key": GATEWAY_KEY, "content-type": "application/json"}
    cases = [
        ({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}, 400),
        ({"model": "gpt-4o-mini", "max_tokens": 5, "messages": []}, 400),
        (
            {
                "model": "gpt-4o-mini",
                "max_tokens": 5,
                "messages": [{"role": "robot", "content": "hi"}],
            },
            400,
        ),
        (
            {
                "model": "gpt-4o-mini",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "document"}]}],
            },
            400,
        ),
        (
            {
                "model": "no-such-model",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
            },
            404,
        ),
    ]
    for body, expected in cases:
        status, _, payload = http("POST", url, body, headers)
        assert status == expected, body
        assert payload["type"] == "error"
        kind = "not_found_error" if expected == 404 else "invalid_request_error"
        assert payload["error"]["type"] == kind and payload["error"]["message"]
    with client(gateway) as claude, pytest.raises(anthropic.NotFoundError):
        claude.messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
