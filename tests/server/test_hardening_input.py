"""Hostile or careless input gets a 4xx (never a 500), every error carries the request id,
a fault keeps the connection alive, and a client that hangs up is not an ERROR
(issue 16, items 6-12)."""

from __future__ import annotations

import http.client as http_client
import logging
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
AUTH = {"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"}
ADMIN_KEY = "hardening-admin-key"
#: Models whose upstream sends a malformed stream event (the test upstream's faults).
MALFORMED = {"bad-list": "listevent;after=2", "bad-null": "nullchoice;after=2",
             "bad-first": "listevent;after=0"}  # fmt: skip


def hardened_config(upstream_url: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config = base_config(upstream_url, passthrough_provider="up", **overrides)
    config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
    config["governance"] = {"keys_path": str(tmp_path / "keys.db")}
    for name, fault in MALFORMED.items():
        config["providers"][name] = {"base_url": f"{upstream_url}/v1",
                                     "headers": {"x-upstream-fault": fault}}  # fmt: skip
        config["models"][name] = {"provider": name, "model": "gpt-4o-mini"}
    config["batching"] = {
        "enabled": True, "jobs": {"enabled": True, "path": str(tmp_path / "jobs.db")}
    }  # fmt: skip
    return config


@pytest.fixture
def hardened(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> Gateway:
    return start_gateway(hardened_config(upstream.url, tmp_path))


def admin(gateway: Gateway, method: str, path: str, body: Any = None, raw: bytes | None = None
          ) -> tuple[int, dict[str, str], Any]:  # fmt: skip
    headers = {"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"}
    return http(method, f"{gateway.url}{path}", body, headers, raw)


def error_of(payload: Any) -> dict[str, Any]:
    assert set(payload) == {"error"}, payload
    error: dict[str, Any] = payload["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# ---------------------------------------------------------------- 6: stream_options


@pytest.mark.parametrize("options", ["yes", [1, 2], 5, True])
def test_non_object_stream_options_is_a_400(hardened: Gateway, options: Any) -> None:
    body = {**CHAT, "stream": True, "stream_options": options}
    status, headers, payload = http("POST", f"{hardened.base_url}/chat/completions", body, AUTH)
    assert status == 400, payload
    assert error_of(payload)["param"] == "stream_options"
    assert headers["x-thrifty-request-id"]


# ---------------------------------------------------------------- 7: JSON depth


@pytest.mark.parametrize("depth", [129, 256, 300, 1023])
def test_json_nested_deeper_than_255_is_a_400(hardened: Gateway, depth: int) -> None:
    raw = orjson.dumps({**CHAT, "extra": 0}).replace(b"0}", nested(depth - 1) + b"}")
    status, _, payload = http("POST", f"{hardened.base_url}/chat/completions", raw=raw,
                              headers=AUTH)  # fmt: skip
    assert status == 400, payload
    assert error_of(payload)["code"] == "json_too_deep"
    spec = b'{"tags": {"x": "y"}, "owner": ' + nested(depth - 1) + b"}"
    status, _, payload = admin(hardened, "POST", "/admin/keys", raw=spec)
    assert status == 400 and error_of(payload)["code"] == "json_too_deep"
    status, _, payload = http("POST", f"{hardened.base_url}/batches", raw=nested(depth),
                              headers=AUTH)  # fmt: skip
    assert status == 400 and error_of(payload)["code"] == "json_too_deep"


def test_json_nested_128_deep_is_still_served(hardened: Gateway) -> None:
    raw = orjson.dumps({**CHAT, "user": 0}).replace(b"0}", nested(127) + b"}")
    status, _, payload = http("POST", f"{hardened.base_url}/chat/completions", raw=raw,
                              headers=AUTH)  # fmt: skip
    assert status < 500, payload


# ---------------------------------------------------------------- 8: model names


@pytest.mark.parametrize("model", ["gpt-4o-mini\r\nx-evil: 1", "gpt\x00", "modèle-😀", "a" * 300])
@pytest.mark.parametrize("stream", [False, True])
def test_a_model_name_that_is_not_a_header_value_is_a_400(
    hardened: Gateway, model: str, stream: bool
) -> None:
    body = {**CHAT, "model": model, "stream": stream}
    status, headers, payload = http("POST", f"{hardened.base_url}/chat/completions", body, AUTH)
    assert status == 400, payload
    assert error_of(payload)["param"] == "model"
    assert "x-evil" not in headers


# ---------------------------------------------------------------- 9: admin and batch numbers


@pytest.mark.parametrize("field", ["requests_per_minute", "tokens_per_minute"])
def test_admin_rate_limits_past_int64_are_a_400(hardened: Gateway, field: str) -> None:
    status, _, payload = admin(hardened, "POST", "/admin/keys", {field: 2**63})
    assert status == 400, payload
    assert error_of(payload)["param"] == field
    status, _, created = admin(hardened, "POST", "/admin/keys", {"owner": "ana"})
    assert status == 201
    raw = b'{"%s": %d}' % (field.encode(), 2**64)
    status, _, payload = admin(hardened, "PATCH", f"/admin/keys/{created['id']}", raw=raw)
    assert status == 400, payload


def test_an_overlong_completion_window_is_a_400(hardened: Gateway, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=hardened.base_url, api_key=GATEWAY_KEY, max_retries=0)
    line = {"custom_id": "q0", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    uploaded = client.files.create(file=("in.jsonl", orjson.dumps(line) + b"\n"),
                                   purpose="batch")  # fmt: skip
    for window in ["9" * 400 + "h", "24d", 24]:
        body = {"input_file_id": uploaded.id, "endpoint": "/v1/chat/completions",
                "completion_window": window}  # fmt: skip
        status, _, payload = http("POST", f"{hardened.base_url}/batches", body, AUTH)
        assert status == 400, (window, payload)
        assert error_of(payload)["param"] == "completion_window"


# ---------------------------------------------------------------- 10: malformed stream events


@pytest.mark.parametrize("model", sorted(MALFORMED))
def test_a_malformed_upstream_stream_event_is_an_sse_error_and_booked(
    hardened: Gateway, model: str
) -> None:
    client = openai.OpenAI(base_url=hardened.base_url, api_key=GATEWAY_KEY, max_retries=0,
                           default_headers={"x-thrifty-tags": f"case={model}"})  # fmt: skip
    with pytest.raises(openai.APIError) as caught:
        for _ in client.chat.completions.create(**{**CHAT, "model": model}, stream=True):
            pass
    assert "malformed" in str(caught.value).lower()
    rows = [r for r in hardened.requests() if r["tags"].get("case") == model]
    assert len(rows) == 1
    attempts = hardened.attempts(rows[0]["request_id"])
    assert attempts and attempts[-1]["status"] == "error"


# ---------------------------------------------------------------- 11: errors carry the id


def test_every_error_carries_the_request_id(hardened: Gateway) -> None:
    for method, path in [("GET", "/nowhere"), ("DELETE", "/health"), ("GET", "/admin/keys")]:
        status, headers, payload = http(method, f"{hardened.url}{path}", headers={})
        assert status in (401, 404, 405), payload
        assert headers["x-thrifty-request-id"]


def test_an_internal_error_keeps_the_connection_and_carries_the_request_id(
    hardened: Gateway, tmp_path: Path
) -> None:
    # a real fault: someone drops the key store's table while the gateway runs
    with sqlite3.connect(tmp_path / "keys.db") as db:
        db.execute("DROP TABLE virtual_keys")
    conn = http_client.HTTPConnection("127.0.0.1", hardened.server.port, timeout=10)
    try:
        for method, path, body in [
            ("GET", "/admin/keys", None),
            ("POST", "/v1/chat/completions", orjson.dumps(CHAT)),
        ]:
            headers = {"authorization": f"Bearer {ADMIN_KEY if 'admin' in path else 'vk-x'}",
                       "content-type": "application/json"}  # fmt: skip
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = orjson.loads(resp.read())
            assert resp.status == 500, payload
            assert error_of(payload)["code"] == "internal_error"
            assert resp.getheader("x-thrifty-request-id")
            assert (resp.getheader("connection") or "").lower() != "close"
        conn.request("GET", "/health")  # the same connection still serves
        assert conn.getresponse().status == 200
    finally:
        conn.close()


# ---------------------------------------------------------------- 12: hang-ups


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/admin/keys", "/v1/batches"])
def test_a_client_hanging_up_mid_upload_is_not_an_error(
    hardened: Gateway, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO)
    key = ADMIN_KEY if path.startswith("/admin") else GATEWAY_KEY
    with socket.create_connection(("127.0.0.1", hardened.server.port)) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n"
            'content-type: application/json\r\ncontent-length: 100000\r\n\r\n{"mo'.encode()
        )
        time.sleep(0.2)
    time.sleep(0.3)
    status, _, _ = http("GET", f"{hardened.url}/health")
    assert status == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [(r.name, r.getMessage(), r.exc_info) for r in errors]
