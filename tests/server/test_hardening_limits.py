"""Resource bounds on what a client sends: every route's body, tags and metadata
(issue 16, items 1 and 3). Bounds are asserted by behaviour: the status, and that the
gateway stops reading."""

from __future__ import annotations

import contextlib
import http.client as http_client
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http

ADMIN_KEY = "limits-admin-key"
LIMIT = 1024 * 1024
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
AUTH = {"authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json"}


@pytest.fixture
def limited(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> Gateway:
    config = base_config(upstream.url, server={"max_body_bytes": LIMIT})
    config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
    config["governance"] = {"keys_path": str(tmp_path / "keys.db")}
    config["batching"] = {
        "enabled": True,
        "jobs": {"enabled": True, "path": str(tmp_path / "jobs.db"), "max_file_bytes": 4096},
    }
    return start_gateway(config)


def chunks(total: int, size: int = 65_536) -> Iterator[bytes]:
    """A chunked body of ``total`` bytes that never declares its length."""
    yield b'{"x": "'
    sent = 0
    while sent < total:
        yield b"a" * size
        sent += size


def post_chunked(gateway: Gateway, path: str, key: str, total: int) -> tuple[int, Any]:
    conn = http_client.HTTPConnection("127.0.0.1", gateway.server.port, timeout=30)
    try:
        form = path.startswith("/dashboard")
        ctype = "application/x-www-form-urlencoded" if form else "application/json"
        headers = {"authorization": f"Bearer {key}", "content-type": ctype}
        # the gateway may answer and close while we are still sending
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.request("POST", path, body=chunks(total), headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read())
    finally:
        conn.close()


ROUTES = [
    ("/v1/batches", GATEWAY_KEY),
    ("/admin/keys", ADMIN_KEY),
    ("/dashboard/login", ADMIN_KEY),
    ("/v1/chat/completions", GATEWAY_KEY),
]


@pytest.mark.parametrize(("path", "key"), ROUTES)
def test_every_route_refuses_a_chunked_body_past_the_limit(
    limited: Gateway, path: str, key: str
) -> None:
    status, payload = post_chunked(limited, path, key, 8 * 1024 * 1024)
    assert status == 413, payload
    assert payload["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(("path", "key"), ROUTES)
def test_every_route_refuses_a_declared_length_past_the_limit(
    limited: Gateway, path: str, key: str
) -> None:
    """Refused from the headers alone: the gateway answers before any of the body comes."""
    ctype = (
        "application/x-www-form-urlencoded" if path.startswith("/dashboard") else "application/json"
    )
    with socket.create_connection(("127.0.0.1", limited.server.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n"
            f"content-type: {ctype}\r\ncontent-length: {100 * LIMIT}\r\n\r\n".encode()
        )
        reply = b""
        while b"payload_too_large" not in reply:
            data = sock.recv(65_536)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert b"payload_too_large" in reply


def test_uploads_keep_their_own_limit(limited: Gateway) -> None:
    body = b'--b\r\ncontent-disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n'
    body += b"x" * 80_000 + b"\r\n--b--\r\n"
    headers = {**AUTH, "content-type": "multipart/form-data; boundary=b"}
    status, _, payload = http("POST", f"{limited.base_url}/files", raw=body, headers=headers)
    assert status == 413 and "4096" in payload["error"]["message"]


# ---------------------------------------------------------------- 3: tags and metadata


@pytest.mark.parametrize(
    ("metadata", "tags_header"),
    [
        ({f"k{i}": "v" for i in range(20_000)}, None),
        ({f"k{i}": "v" for i in range(65)}, None),
        ({"k" * 65: "v"}, None),
        ({"k": "v" * 513}, None),
        ({f"k{i}": "v" for i in range(60)}, ",".join(f"h{i}=1" for i in range(10))),
        (None, "team=" + "x" * 513),
    ],
)
def test_too_many_or_too_long_tags_are_a_400(
    limited: Gateway, metadata: Any, tags_header: str | None
) -> None:
    body = {**CHAT, "metadata": metadata} if metadata is not None else CHAT
    headers = {**AUTH, "x-thrifty-tags": tags_header} if tags_header else AUTH
    status, _, payload = http("POST", f"{limited.base_url}/chat/completions", body, headers)
    assert status == 400, payload
    assert payload["error"]["param"] in ("metadata", "x-thrifty-tags")
    assert "tag" in payload["error"]["message"]


def test_tags_within_the_limits_reach_the_ledger(limited: Gateway) -> None:
    metadata = {f"k{i}": "v" * 512 for i in range(63)}
    headers = {**AUTH, "x-thrifty-tags": "team=search"}
    status, resp_headers, payload = http(
        "POST", f"{limited.base_url}/chat/completions", {**CHAT, "metadata": metadata}, headers
    )
    assert status == 200, payload
    row = limited.row(resp_headers["x-thrifty-request-id"])
    assert len(row["tags"]) == 64 and row["tags"]["team"] == "search"
