"""``thrifty serve`` and ``thrifty upstream`` as real processes: start-up, multiple workers,
and a graceful shutdown that finishes in-flight requests and flushes the ledger."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml

from thrifty.cli.processes import free_port
from thrifty.cli.processes import wait_healthy as healthy
from thrifty.ledger.stores.sqlite import SqliteLedgerStore

THRIFTY = [sys.executable, "-m", "thrifty.cli.main"]


def wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    healthy(f"http://127.0.0.1:{port}/health", process, timeout=20)


@pytest.fixture
def slow_upstream() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen([*THRIFTY, "upstream", "--port", str(port), "--latency-ms", "1500"])
    try:
        wait_healthy(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def start_gateway(
    tmp_path: Path, upstream_port: int, workers: int = 1
) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    ledger = tmp_path / "ledger.db"
    config = {
        "server": {"port": port, "workers": workers},
        "auth": {"keys": ["k"]},
        "providers": {"up": {"base_url": f"http://127.0.0.1:{upstream_port}/v1"}},
        "models": {"gpt-4o-mini": {"provider": "up"}},
        "ledger": {"path": str(ledger), "flush_interval_ms": 5000},
        "logging": {"level": "warning"},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen([*THRIFTY, "serve", "--config", str(path)])
    wait_healthy(port, process)
    return process, port, ledger


def wait_in_flight(upstream_port: int, count: int, timeout: float = 20) -> None:
    """Until the upstream has received ``count`` requests (they then wait out its latency).

    Polled, not slept: under CPU contention a fixed sleep could signal before they arrive.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{upstream_port}/_stats") as reply:
            stats = json.load(reply)
        if stats["requests"] >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"the upstream never saw {count} requests")


def ledger_count(path: Path) -> int:
    store = SqliteLedgerStore(path)
    try:
        return len(store.query_requests())
    finally:
        store.close()


@pytest.mark.slow
def test_sigterm_finishes_in_flight_requests_and_flushes_ledger(
    tmp_path: Path, slow_upstream: int
) -> None:
    process, port, ledger = start_gateway(tmp_path, slow_upstream)
    results: list[str] = []

    def call() -> None:
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0) as c:
            reply = c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
            results.append(reply.choices[0].message.content or "")

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    wait_in_flight(upstream_port=slow_upstream, count=3)
    process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=20)
    # uvicorn re-raises the signal after its graceful shutdown: exit by SIGTERM is expected
    assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    assert len(results) == 3, "in-flight requests were answered, not dropped"
    # flush_interval is 5 s: the rows are there because shutdown flushed them
    assert ledger_count(ledger) == 3


@pytest.mark.slow
def test_two_workers_share_one_ledger(tmp_path: Path, slow_upstream: int) -> None:
    process, port, ledger = start_gateway(tmp_path, slow_upstream, workers=2)
    try:
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k") as client:
            for _ in range(4):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
                )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert ledger_count(ledger) == 4
