"""A client that leaves mid-stream: the upstream stream is released and the ledger
still gets its row (status cancelled, the partial answer billed)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import orjson
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config


def leave_after_first_chunk(
    upstream: ServerThread,
    start_gateway: Callable[..., Gateway],
    model: str,
    chunk_delay_ms: int,
    timeout_s: float,
) -> tuple[Gateway, bytes]:
    """Stream from ``model`` (the test upstream pausing ``chunk_delay_ms`` between chunks)
    over a raw socket, and hang up right after the first SSE event; returns what arrived."""
    config = base_config(upstream.url)
    config["providers"][model] = {
        "base_url": f"{upstream.url}/v1",
        "timeout_s": 120,
        "headers": {"x-upstream-chunk-delay-ms": str(chunk_delay_ms)},
    }
    config["models"][model] = {"provider": model, "model": "gpt-4o"}
    gateway = start_gateway(config)
    body = orjson.dumps({
        "model": model, "stream": True,
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
    })  # fmt: skip
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {GATEWAY_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", gateway.server.port), timeout=timeout_s) as sock:
        sock.sendall(request)
        received = b""
        while b"data: " not in received:
            received += sock.recv(4096)
    return gateway, received


def rows_of(gateway: Gateway, model: str, within_s: float) -> list[dict]:
    """The ledger rows asked of ``model``, polled until one shows up or ``within_s`` passes."""
    deadline = time.monotonic() + within_s
    rows: list[dict] = []
    while time.monotonic() < deadline and not rows:
        rows = [r for r in gateway.requests() if r["requested_model"] == model]
        time.sleep(0.1)
    return rows


def test_client_disconnect_mid_stream_is_recorded(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    gateway, received = leave_after_first_chunk(
        upstream, start_gateway, "slow", chunk_delay_ms=150, timeout_s=10
    )
    assert b"200 OK" in received
    # the client is gone after its first chunk; the row must still arrive
    rows = rows_of(gateway, "slow", within_s=10)
    assert len(rows) == 1, "the ledger lost the row of a client that left mid-stream"
    row = rows[0]
    assert row["status"] == "cancelled" and row["stream"] == 1
    attempts = gateway.attempts(row["request_id"])
    assert attempts and attempts[-1]["status"] == "error"
