"""Bad input gets the right 4xx with an OpenAI-style body; upstream failures are retried,
failed over, or reported — and every one of them is in the ledger."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http, upstream_stats

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
AUTH = {"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"}


def assert_openai_error(body: dict[str, Any], error_type: str) -> dict[str, Any]:
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["type"] == error_type and error["message"]
    assert "Traceback" not in error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "raw", "status", "param"),
    [
        (None, b"{not json", 400, None),
        (None, b"", 400, None),
        (None, b"[1, 2]", 400, None),
        ({"model": "gpt-4o-mini"}, None, 400, "messages"),
        ({"model": "gpt-4o-mini", "messages": "hi"}, None, 400, "messages"),
        ({"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}, None, 400,
         "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}]}, None, 400, "model"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, None, 400, "model"),
        ({**CHAT, "n": 0}, None, 400, "n"),
        ({**CHAT, "stream": "yes"}, None, 400, "stream"),
        ({**CHAT, "model": "no-such-model"}, None, 404, "model"),
    ],
)  # fmt: skip
def test_bad_requests(
    gateway: Gateway, body: Any, raw: bytes | None, status: int, param: str | None
) -> None:
    code, headers, payload = http("POST", f"{gateway.base_url}/chat/completions", body, AUTH, raw)
    assert code == status
    error = assert_openai_error(payload, "invalid_request_error")
    assert error["param"] == param
    assert headers["content-type"] == "application/json"


def test_oversized_body(upstream: ServerThread, start_gateway: Callable[..., Gateway]) -> None:
    gateway = start_gateway(base_config(upstream.url, server={"max_body_bytes": 4096}))
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 10_000}]}
    code, _, payload = http("POST", f"{gateway.base_url}/chat/completions", big, AUTH)
    assert code == 413
    assert assert_openai_error(payload, "invalid_request_error")["code"] == "payload_too_large"


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong-key"}])
def test_missing_or_wrong_key(gateway: Gateway, headers: dict[str, str]) -> None:
    code, _, payload = http("POST", f"{gateway.base_url}/chat/completions", CHAT, headers)
    assert code == 401
    assert_openai_error(payload, "authentication_error")
    with openai.OpenAI(base_url=gateway.base_url, api_key="wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(**CHAT)
        with pytest.raises(openai.AuthenticationError):
            client.models.list()


def test_unknown_route_and_method(gateway: Gateway) -> None:
    code, _, payload = http("GET", f"{gateway.base_url}/nothing-here", None, AUTH)
    assert code == 404
    assert_openai_error(payload, "invalid_request_error")
    code, _, payload = http("GET", f"{gateway.base_url}/chat/completions", None, AUTH)
    assert code == 405
    assert_openai_error(payload, "invalid_request_error")


def test_unknown_model_via_sdk(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
    with client, pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-99", messages=CHAT["messages"])
    assert info.value.code == "model_not_found"


def fault_provider(upstream: ServerThread, spec: str) -> dict[str, Any]:
    return {"base_url": f"{upstream.url}/v1", "headers": {"x-upstream-fault": spec}}


def test_upstream_500_then_success_is_retried(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    fault_id = uuid.uuid4().hex
    config = base_config(upstream.url)
    config["providers"]["flaky"] = fault_provider(upstream, f"500;times=1;id={fault_id}")
    config["models"]["flaky"] = {"provider": "flaky", "model": "gpt-4o-mini"}
    gateway = start_gateway(config)
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="flaky", messages=CHAT["messages"]
        )
    assert raw.status_code == 200
    request_id = raw.headers["x-thrifty-request-id"]
    attempts = gateway.attempts(request_id)
    assert [(a["purpose"], a["status"], a["http_status"]) for a in attempts] == [
        ("main", "error", 500),
        ("retry", "ok", 200),
    ]
    assert gateway.row(request_id)["status"] == "ok"


def test_upstream_down_falls_back(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="dead-model", messages=CHAT["messages"]
        )
    assert raw.status_code == 200
    assert raw.headers["x-thrifty-model"] == "gpt-4o-mini"
    request_id = raw.headers["x-thrifty-request-id"]
    attempts = gateway.attempts(request_id)
    assert [a["provider"] for a in attempts] == ["dead"] * 3 + ["up"]
    assert attempts[-1]["purpose"] == "fallback" and attempts[-1]["status"] == "ok"
    row = gateway.row(request_id)
    assert row["requested_model"] == "dead-model" and row["model"] == "gpt-4o-mini"
    # baseline: what the caller asked for (gpt-4o prices) on the same tokens
    assert row["baseline_cost"] > row["cost"] > 0


def test_persistent_429_reaches_client_with_retry_after(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    config = base_config(upstream.url, retries={"max_attempts": 2})
    config["providers"]["limited"] = fault_provider(upstream, "429;retry_after=0")
    config["models"]["limited"] = {"provider": "limited", "model": "gpt-4o-mini"}
    gateway = start_gateway(config)
    before = upstream_stats(upstream)
    code, headers, payload = http(
        "POST", f"{gateway.base_url}/chat/completions", {**CHAT, "model": "limited"}, AUTH
    )
    assert code == 429
    assert "retry-after" in headers
    assert_openai_error(payload, "rate_limit_error")
    after = upstream_stats(upstream)
    assert after != before
    request_id = headers["x-thrifty-request-id"]
    assert [a["http_status"] for a in gateway.attempts(request_id)] == [429, 429]
    assert gateway.row(request_id)["status"] == "error"


def test_stream_cut_mid_answer_is_an_error_not_a_short_200(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    config = base_config(upstream.url)
    config["providers"]["cutting"] = fault_provider(upstream, "cut;after=3")
    config["models"]["cutting"] = {"provider": "cutting", "model": "gpt-4o"}
    gateway = start_gateway(config)
    received = []
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="cutting", messages=CHAT["messages"], stream=True
        )
        with pytest.raises(openai.APIError) as info:
            for chunk in raw.parse():
                received.append(chunk)
    assert "cut" in info.value.message or "ended" in info.value.message
    assert received, "the client got the chunks that did arrive"
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["status"] == "error" and row["error_type"] == "upstream_error"
    attempts = gateway.attempts(row["request_id"])
    assert attempts[-1]["status"] == "error"
    assert row["output_tokens"] > 0 and row["tokens_estimated"] == 1, "partial answer still billed"


def test_provider_key_never_reaches_client_or_logs(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], caplog: pytest.LogCaptureFixture
) -> None:
    from thrifty.upstream.app import UpstreamOptions, build_upstream_app

    secret = "sk-provider-secret-0123456789abcdef"
    locked = ServerThread(build_upstream_app(UpstreamOptions(api_key="the-right-key"))).start()
    try:
        config = base_config(upstream.url)
        config["providers"]["locked"] = {"base_url": f"{locked.url}/v1", "api_key": secret}
        config["models"]["locked"] = {"provider": "locked", "model": "gpt-4o-mini"}
        gateway = start_gateway(config)
        with caplog.at_level(logging.DEBUG, logger="thrifty"):
            code, headers, payload = http(
                "POST", f"{gateway.base_url}/chat/completions", {**CHAT, "model": "locked"}, AUTH
            )
    finally:
        locked.stop()
    assert code == 502
    assert payload["error"]["code"] == "upstream_auth_failed"
    assert secret not in str(payload) and secret[:12] not in str(headers)
    assert secret not in caplog.text and secret[8:20] not in caplog.text
