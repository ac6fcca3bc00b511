"""The model endpoints' raw ASGI fast path answers exactly as the Starlette route does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.conftest import GATEWAY_KEY, ServerThread, base_config

from thrifty.config import parse_config
from thrifty.server.app import GatewayApp, build_app

CHAT = b"/v1/chat/completions"
OK_BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


def scope(headers: list[tuple[bytes, bytes]], path: bytes = CHAT) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": "POST", "scheme": "http", "path": path.decode(),
        "raw_path": path, "root_path": "", "query_string": b"", "headers": headers,
        "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5000),
    }  # fmt: skip


async def call(app: Any, headers: list[tuple[bytes, bytes]], parts: list[bytes]) -> tuple:
    """Run one request; return (status, headers without the request id, body)."""
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope(headers), receive, send)
    start = sent[0]
    kept = sorted((k, v) for k, v in start["headers"] if k != b"x-thrifty-request-id")
    body = orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    if isinstance(body, dict) and "id" in body:
        body.pop("id")
        body.pop("created", None)
    return start["status"], kept, body


AUTH = (b"authorization", f"Bearer {GATEWAY_KEY}".encode())
CASES: dict[str, tuple[list[tuple[bytes, bytes]], list[bytes]]] = {
    "ok": ([AUTH, (b"x-thrifty-tags", b"team=a")], [OK_BODY]),
    "ok_in_parts": ([AUTH], [OK_BODY[:10], OK_BODY[10:]]),
    "no_key": ([], [OK_BODY]),
    "wrong_key": ([(b"x-api-key", b"nope")], [OK_BODY]),
    "bad_json": ([AUTH], [b"{nope"]),
    "empty": ([AUTH], [b""]),
    "too_large_declared": ([AUTH, (b"content-length", b"99999999999")], [OK_BODY]),
    "too_large_streamed": ([AUTH], [b"x" * 600_000, b"x" * 600_000]),
    "unknown_model": ([AUTH], [orjson.dumps({"model": "nope", "messages": []})]),
}


@pytest.fixture
def app(upstream: ServerThread, tmp_path: Path) -> GatewayApp:
    config = base_config(upstream.url, server={"max_body_bytes": 1_000_000})
    return build_app(parse_config(config), ledger_path=str(tmp_path / "l.db"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_path_matches_starlette_route(app: GatewayApp, case: str) -> None:
    headers, parts = CASES[case]

    async def both() -> tuple[tuple, tuple]:
        try:
            fast = await call(app, headers, parts)
            routed = await call(app.app, headers, parts)
            return fast, routed
        finally:
            await app.state.runtime.aclose()

    fast, routed = asyncio.run(both())
    assert fast == routed


def test_unexpected_error_is_rendered_and_logged_not_raised(
    app: GatewayApp, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(ctx: Any) -> Any:
        raise RuntimeError("boom")

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": OK_BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app.state.runtime.pipeline.run = boom
    try:  # not re-raised: the server would close the keep-alive connection
        asyncio.run(app(scope([AUTH]), receive, send))
    finally:
        app.state.runtime.ledger.close()
    assert sent[0]["status"] == 500
    assert any(name == b"x-thrifty-request-id" for name, _ in sent[0]["headers"])
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "internal_error"
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert logged and logged[0].exc_info is not None
