"""Legacy ``POST /v1/completions`` and ``GET /v1/models/{id}`` through the real gateway."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http


def sdk(gateway: Gateway, key: str = GATEWAY_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def test_completion_is_the_chat_answer(gateway: Gateway, upstream: ServerThread) -> None:
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x") as direct:
        expected = direct.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello."}], n=2
        )
    with sdk(gateway) as client:
        raw = client.completions.with_raw_response.create(
            model="gpt-4o-mini", prompt="Say hello.", n=2
        )
        echoed = client.completions.create(model="gpt-4o-mini", prompt="Say hello.", echo=True)
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert [c.text for c in completion.choices] == [c.message.content for c in expected.choices]
    assert completion.usage.prompt_tokens == expected.usage.prompt_tokens
    assert echoed.choices[0].text == "Say hello." + expected.choices[0].message.content
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["status"] == "ok" and row["output_tokens"] == completion.usage.completion_tokens


def test_streamed_completion(gateway: Gateway) -> None:
    with sdk(gateway) as client:
        whole = client.completions.create(model="gpt-4o-mini", prompt="Tell me a story.")
        chunks = list(
            client.completions.create(
                model="gpt-4o-mini",
                prompt="Tell me a story.",
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.object == "text_completion" for c in chunks)


def test_unsupported_completion_parameters_are_400s(gateway: Gateway) -> None:
    url = f"{gateway.base_url}/completions"
    auth = {"authorization": f"Bearer {GATEWAY_KEY}"}
    for body, param in [
        ({"model": "gpt-4o-mini"}, "prompt"),
        ({"model": "gpt-4o-mini", "prompt": ["a", "b"]}, "prompt"),
        ({"model": "gpt-4o-mini", "prompt": [1, 2, 3]}, "prompt"),
        ({"model": "gpt-4o-mini", "prompt": "a", "suffix": "z"}, "suffix"),
        ({"model": "gpt-4o-mini", "prompt": "a", "best_of": 3}, "best_of"),
        ({"model": "gpt-4o-mini", "prompt": "a", "max_tokens": 0}, "max_tokens"),
    ]:
        status, _, payload = http("POST", url, body, auth)
        assert status == 400, body
        assert payload["error"]["param"] == param


def test_retrieve_model(upstream: ServerThread, start_gateway, tmp_path: Path) -> None:
    config = base_config(upstream.url)
    config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": ["admin-key"]}
    config["governance"] = {"keys_path": str(tmp_path / "keys.db")}
    gateway = start_gateway(config)
    status, _, created = http(
        "POST",
        f"{gateway.url}/admin/keys",
        {"models": ["gpt-4o-mini"]},
        {"authorization": "Bearer admin-key"},
    )
    assert status == 201, created
    with sdk(gateway) as client:
        model = client.models.retrieve("gpt-4o")
        assert model.id == "gpt-4o" and model.object == "model"
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve("no-such-model")
        assert caught.value.body["code"] == "model_not_found"
    with sdk(gateway, created["key"]) as limited:
        assert limited.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
        with pytest.raises(openai.NotFoundError):
            limited.models.retrieve("gpt-4o")  # a model the key may not use is not revealed
