"""Real servers on loopback: the test upstream and the gateway, each under uvicorn."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn

from thrifty.config import parse_config
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.server.app import build_app
from thrifty.server.protocol import PROTOCOL
from thrifty.upstream.app import UpstreamOptions, build_upstream_app

# Real redis-server and PostgreSQL processes for the scale-out tests (started on first use).
pytest_plugins = ["tests.shared_servers"]

GATEWAY_KEY = "test-gateway-key"


class ServerThread:
    """Serve an ASGI app under uvicorn (uvloop + httptools) in a background thread.

    Gateways run under the gateway's own protocol (``http=PROTOCOL``: httptools with
    header size and read-time bounds), as ``thrifty serve`` runs them.

    The socket is bound before the thread starts (port 0), so no other process can take
    the port in between. ``stop`` is graceful: in-flight requests finish, then the app's
    lifespan shutdown runs. uvicorn installs no signal handlers off the main thread.
    """

    def __init__(self, app: Any, http: str = "httptools") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            app, loop="uvloop", http=http, log_config=None, log_level="warning",
            access_log=False, lifespan="on", timeout_graceful_shutdown=10,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self._socket.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """Plain HTTP (no SDK) for bad-input tests: returns status, headers, parsed JSON."""
    import urllib.error
    import urllib.request

    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, resp_headers, payload = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        status, resp_headers, payload = exc.code, dict(exc.headers), exc.read()
        exc.close()
    return status, {k.lower(): v for k, v in resp_headers.items()}, orjson.loads(payload)


@pytest.fixture(scope="session")
def upstream() -> Iterator[ServerThread]:
    server = ServerThread(build_upstream_app(UpstreamOptions())).start()
    yield server
    server.stop()


def upstream_stats(upstream: ServerThread) -> dict[str, Any]:
    return http("GET", f"{upstream.url}/_stats")[2]


def base_config(upstream_url: str, **overrides: Any) -> dict[str, Any]:
    """A gateway config serving the test upstream's models, plus a dead provider."""
    config: dict[str, Any] = {
        "auth": {"keys": [GATEWAY_KEY]},
        "providers": {
            "up": {"base_url": f"{upstream_url}/v1", "timeout_s": 10},
            "dead": {"base_url": "http://127.0.0.1:9/v1", "connect_timeout_s": 1},
        },
        "models": {
            "gpt-4o-mini": {"provider": "up"},
            "gpt-4o": {"provider": "up"},
            "o3-mini": {"provider": "up"},
            "text-embedding-3-small": {"provider": "up"},
            "dead-model": {"provider": "dead", "model": "gpt-4o", "fallbacks": ["gpt-4o-mini"]},
        },
        "retries": {"max_attempts": 3, "backoff_initial_s": 0.01, "backoff_max_s": 0.05},
        "ledger": {"flush_interval_ms": 20},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@dataclass
class Gateway:
    server: ServerThread
    ledger_path: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        return f"{self.server.url}/v1"

    def flush(self) -> None:
        self.server.server.config.app.state.runtime.ledger.flush()  # type: ignore[attr-defined]

    def requests(self) -> list[dict[str, Any]]:
        self.flush()
        store = SqliteLedgerStore(self.ledger_path)
        try:
            return store.query_requests()
        finally:
            store.close()

    def row(self, request_id: str) -> dict[str, Any]:
        rows = [r for r in self.requests() if r["request_id"] == request_id]
        assert len(rows) == 1, f"expected one ledger row for {request_id}, got {len(rows)}"
        return rows[0]

    def attempts(self, request_id: str) -> list[dict[str, Any]]:
        self.flush()
        store = SqliteLedgerStore(self.ledger_path)
        try:
            return store.query_attempts(request_id)
        finally:
            store.close()


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Gateway]]:
    started: list[Gateway] = []

    def start(config: dict[str, Any]) -> Gateway:
        ledger = tmp_path / f"ledger-{uuid.uuid4().hex[:6]}.db"
        app = build_app(parse_config(config), ledger_path=str(ledger))
        gateway = Gateway(ServerThread(app, http=PROTOCOL).start(), ledger)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.server.stop()


@pytest.fixture
def gateway(upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]) -> Gateway:
    return start_gateway(base_config(upstream.url))
