"""``POST /v1/responses`` through the real gateway and test upstream, with the openai SDK."""

from __future__ import annotations

import json

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, http

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def sdk(gateway: Gateway, key: str = GATEWAY_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def direct_answer(upstream: ServerThread, messages: list[dict]) -> openai.types.chat.ChatCompletion:
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x") as direct:
        return direct.chat.completions.create(model="gpt-4o-mini", messages=messages)


def test_string_input_with_instructions_is_the_chat_answer(
    gateway: Gateway, upstream: ServerThread
) -> None:
    expected = direct_answer(
        upstream,
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name a prime number."},
        ],
    )
    with sdk(gateway) as client:
        raw = client.responses.with_raw_response.create(
            model="gpt-4o-mini", instructions="Be brief.", input="Name a prime number."
        )
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == expected.choices[0].message.content
    assert response.usage.input_tokens == expected.usage.prompt_tokens
    assert response.usage.output_tokens == expected.usage.completion_tokens
    assert response.instructions == "Be brief."
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["endpoint"] == "chat.completions" and row["status"] == "ok"
    assert row["input_tokens"] == response.usage.input_tokens
    assert float(raw.headers["x-thrifty-cost"]) == pytest.approx(row["cost"])


def test_item_list_input_and_previous_response_id(gateway: Gateway, upstream: ServerThread) -> None:
    with sdk(gateway) as client:
        first = client.responses.create(
            model="gpt-4o-mini",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "Hi there."}]}],
        )
        second = client.responses.create(
            model="gpt-4o-mini", input="And again?", previous_response_id=first.id
        )
    assert second.previous_response_id == first.id
    conversation = [
        {"role": "user", "content": "Hi there."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "And again?"},
    ]
    assert second.output_text == direct_answer(upstream, conversation).choices[0].message.content


def test_previous_response_is_per_tenant_and_store_false_keeps_nothing(
    upstream: ServerThread, start_gateway
) -> None:
    from tests.conftest import base_config

    gateway = start_gateway(base_config(upstream.url, auth={"keys": [GATEWAY_KEY, "other-key"]}))
    with sdk(gateway) as mine, sdk(gateway, "other-key") as theirs:
        stored = mine.responses.create(model="gpt-4o-mini", input="Remember me.")
        with pytest.raises(openai.NotFoundError) as caught:
            theirs.responses.create(
                model="gpt-4o-mini", input="Who?", previous_response_id=stored.id
            )
        assert caught.value.body["code"] == "previous_response_not_found"
        unstored = mine.responses.create(model="gpt-4o-mini", input="Forget me.", store=False)
        with pytest.raises(openai.NotFoundError):
            mine.responses.create(
                model="gpt-4o-mini", input="Who?", previous_response_id=unstored.id
            )
        assert (
            mine.responses.create(
                model="gpt-4o-mini", input="Who?", previous_response_id=stored.id
            ).status
            == "completed"
        )


def test_function_tools_round_trip(gateway: Gateway) -> None:
    with sdk(gateway) as client:
        response = client.responses.create(
            model="gpt-4o-mini", input="Weather in Paris?", tools=[TOOL]
        )
        calls = [item for item in response.output if item.type == "function_call"]
        assert [c.name for c in calls] == ["get_weather"]
        follow = client.responses.create(
            model="gpt-4o-mini",
            previous_response_id=response.id,
            input=[
                {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}
            ],
        )
    assert follow.status == "completed" and follow.output_text


def test_stream_emits_the_documented_events(gateway: Gateway) -> None:
    with sdk(gateway) as client:
        events = list(
            client.responses.create(model="gpt-4o-mini", input="Tell me a story.", stream=True)
        )
        with client.responses.stream(model="gpt-4o-mini", input="Tell me a story.") as stream:
            for _ in stream:
                pass
            final = stream.get_final_response()
    names = [e.type for e in events]
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    completed = events[-1].response
    assert deltas == completed.output_text == final.output_text
    assert completed.usage.output_tokens > 0 and completed.usage.input_tokens > 0


def test_stream_with_tools(gateway: Gateway) -> None:
    with sdk(gateway) as client:
        events = list(
            client.responses.create(
                model="gpt-4o-mini", input="Weather?", tools=[TOOL], stream=True
            )
        )
    names = [e.type for e in events]
    assert "response.function_call_arguments.done" in names
    item = events[-1].response.output[0]
    assert item.type == "function_call" and item.name == "get_weather"


def test_bad_input_is_a_400_in_openai_shape(gateway: Gateway) -> None:
    url = f"{gateway.url}/v1/responses"
    auth = {"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"}
    for body, param in [
        ({"model": "gpt-4o-mini"}, "input"),
        ({"model": "gpt-4o-mini", "input": 5}, "input"),
        ({"model": "gpt-4o-mini", "input": [{"type": "file_search_call"}]}, "input[0]"),
        ({"model": "gpt-4o-mini", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0]"),
    ]:
        status, _, payload = http("POST", url, body, auth)
        assert status == 400, body
        assert payload["error"]["param"] == param
    status, _, payload = http("POST", url, {"model": "nope", "input": "x"}, auth)
    assert status == 404 and payload["error"]["code"] == "model_not_found"


def test_text_format_and_max_output_tokens(gateway: Gateway) -> None:
    schema = {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}
    with sdk(gateway) as client:
        structured = client.responses.create(
            model="gpt-4o-mini", input="Name a colour.", text={"format": schema}
        )
        cut = client.responses.create(
            model="gpt-4o-mini", input="Tell me a long story.", max_output_tokens=3
        )
    assert isinstance(json.loads(structured.output_text), dict)
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"
    assert cut.usage.output_tokens == 3
