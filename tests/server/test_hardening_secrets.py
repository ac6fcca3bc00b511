"""The provider key never reaches a client, the ledger or a log line, whatever path an
upstream error takes (issue 16, item 13): the test upstream echoes the key it was sent in
a mid-stream error event, a malformed event and a non-stream error body."""

from __future__ import annotations

import http.client as http_client
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

PROVIDER_KEY = "sk-provider-SECRET-4c1f9a0e7b2d"
#: Models whose upstream echoes the provider key (the test upstream's key faults).
ECHOING = {"echo-mid": "keyerror;after=2", "echo-first": "keyerror;after=0",
           "echo-junk": "keyjunk;after=2", "echo-junk-first": "keyjunk;after=0"}  # fmt: skip


@pytest.fixture
def gateway(upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]) -> Gateway:
    config = base_config(upstream.url)
    for name, fault in ECHOING.items():
        config["providers"][name] = {
            "base_url": f"{upstream.url}/v1", "api_key": PROVIDER_KEY,
            "headers": {"x-upstream-fault": fault},
        }  # fmt: skip
        config["models"][name] = {"provider": name, "model": "gpt-4o-mini"}
    return start_gateway(config)


def raw_exchange(gateway: Gateway, body: dict[str, Any]) -> bytes:
    """Every byte the client receives: status line, headers and body."""
    url = urlsplit(gateway.url)
    conn = http_client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", orjson.dumps(body), {
            "authorization": f"Bearer {GATEWAY_KEY}", "content-type": "application/json",
        })  # fmt: skip
        resp = conn.getresponse()
        head = f"{resp.status} {resp.reason}\r\n{resp.msg}".encode()
        return head + resp.read()
    finally:
        conn.close()


def ledger_text(path: Path) -> str:
    """Every column of every row of every table in the ledger, as text."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')
        )
    finally:
        db.close()


def test_the_provider_key_never_leaves_the_gateway(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = (PROVIDER_KEY, PROVIDER_KEY[:8], PROVIDER_KEY[-12:])
    seen: list[bytes] = []
    with caplog.at_level(logging.DEBUG):
        for model in ECHOING:
            for stream in (True, False):
                body = {"model": model, "stream": stream,
                        "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
                seen.append(raw_exchange(gateway, body))
    # every path did fail on the echoed key (else this test proves nothing)
    assert sum(b"Incorrect API key provided" in reply for reply in seen) >= 3
    for reply in seen:
        for secret in secrets:
            assert secret.encode() not in reply, reply[-400:]
    rows = gateway.requests()
    assert len(rows) == 2 * len(ECHOING)
    assert any(r["status"] == "error" for r in rows), rows[0]
    stored = ledger_text(gateway.ledger_path)
    assert "Incorrect API key provided" in stored
    for secret in secrets:
        assert secret not in stored
        assert secret not in caplog.text
