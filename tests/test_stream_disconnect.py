"""A client that leaves mid-stream: the upstream stream is released and the ledger
still gets its row (status cancelled, the partial answer billed)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import orjson
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config


def test_client_disconnect_mid_stream_is_recorded(
    upstream: ServerThread, start_gateway: Callable[..., Gateway]
) -> None:
    config = base_config(upstream.url)
    config["providers"]["slow"] = {
        "base_url": f"{upstream.url}/v1",
        "headers": {"x-upstream-chunk-delay-ms": "150"},
    }
    config["models"]["slow"] = {"provider": "slow", "model": "gpt-4o"}
    gateway = start_gateway(config)
    body = orjson.dumps({
        "model": "slow", "stream": True,
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
    })  # fmt: skip
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {GATEWAY_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", gateway.server.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"data: " not in received:
            received += sock.recv(4096)
        assert b"200 OK" in received
    # the client is gone after its first chunk; the row must still arrive
    deadline = time.monotonic() + 10
    rows: list[dict] = []
    while time.monotonic() < deadline and not rows:
        rows = [r for r in gateway.requests() if r["requested_model"] == "slow"]
        time.sleep(0.1)
    assert len(rows) == 1, "the ledger lost the row of a client that left mid-stream"
    row = rows[0]
    assert row["status"] == "cancelled" and row["stream"] == 1
    attempts = gateway.attempts(row["request_id"])
    assert attempts and attempts[-1]["status"] == "error"
