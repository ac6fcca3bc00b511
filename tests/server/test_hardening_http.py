"""Connection bounds (issue 16, item 2): header size, slow headers (slowloris), stalled
bodies. Raw sockets, because no well-behaved client does any of this."""

from __future__ import annotations

import http.client as http_client
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

from thrifty.config import parse_config

HEADER_LIMIT = 16 * 1024


@pytest.fixture
def bounded(upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]) -> Gateway:
    server = {"max_header_bytes": HEADER_LIMIT, "header_timeout_s": 0.5, "body_timeout_s": 0.5}
    return start_gateway(base_config(upstream.url, server=server))


def read_until_closed(sock: socket.socket, wait_s: float = 10.0) -> bytes:
    """Everything the gateway sends until it closes; fails if it keeps the connection."""
    sock.settimeout(wait_s)
    reply = b""
    while True:
        try:
            data = sock.recv(65_536)
        except TimeoutError:
            pytest.fail(f"the gateway kept the connection open; got {reply!r}")
        except ConnectionResetError:
            return reply
        if not data:
            return reply
        reply += data


def test_a_header_past_the_limit_is_a_431_and_the_connection_closes(bounded: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", bounded.server.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: ")
        with pytest.raises(OSError):  # the gateway hangs up long before 100 MB
            for _ in range(100 * 16):
                sock.sendall(b"a" * 65_536)
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]


def test_headers_within_the_limit_are_served(bounded: Gateway) -> None:
    status, _, payload = http("GET", f"{bounded.url}/health", headers={"x-big": "a" * 12_000})
    assert status == 200, payload


def test_headers_that_never_finish_time_out(bounded: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", bounded.server.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        for _ in range(3):  # a byte now and then does not keep it open
            time.sleep(0.2)
            sock.sendall(b"x")
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 408"), reply


def test_a_connection_that_sends_nothing_is_closed(bounded: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", bounded.server.port)) as sock:
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408")


def test_a_stalled_body_closes_the_connection_quietly(
    bounded: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with socket.create_connection(("127.0.0.1", bounded.server.port)) as sock:
        sock.sendall(
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
            f"authorization: Bearer {GATEWAY_KEY}\r\ncontent-type: application/json\r\n"
            'content-length: 1000\r\n\r\n{"model"'.encode()
        )
        read_until_closed(sock)
    assert http("GET", f"{bounded.url}/health")[0] == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_keep_alive_requests_are_not_timed_out(bounded: Gateway) -> None:
    """The header timer runs per request: a keep-alive client is never cut off."""
    conn = http_client.HTTPConnection("127.0.0.1", bounded.server.port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            time.sleep(0.3)  # under uvicorn's keep-alive (5 s), past no header timer
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_header_bytes", 10), ("header_timeout_s", 0), ("body_timeout_s", -1)],
)
def test_bad_limits_are_config_errors_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(Exception, match=key):
        parse_config(base_config("http://127.0.0.1:9", server={key: value}))
