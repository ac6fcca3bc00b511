"""``GET /metrics`` after real traffic, read with prometheus_client's own text parser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http
from tests.dashboard.test_dashboard import request

from thrifty.cli.processes import free_port, wait_healthy
from thrifty.ledger.record import RequestRecord
from thrifty.metrics.recorder import MAX_EXTRA_MODELS, MetricsRecorder

ADMIN_KEY = "admin-key-for-metrics"


def scrape(gateway: Gateway, **headers: str) -> dict[str, list[Any]]:
    status, resp_headers, body = request(gateway, "GET", "/metrics", headers=headers)
    assert status == 200 and resp_headers["content-type"].startswith("text/plain")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def total(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_count_the_requests_sent(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(base_config(upstream.url, cache={"enabled": True, "store": "memory"}))
    hello = [{"role": "user", "content": "Say hello."}]
    ids = []
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        for _ in range(3):  # a miss, then two exact-cache hits
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=hello, temperature=0
            )
            ids.append(raw.headers["x-thrifty-request-id"])
        client.chat.completions.create(model="gpt-4o", messages=hello)
        stream = client.chat.completions.create(  # not from the cache: a first token to time
            model="gpt-4o", messages=hello, stream=True,
            extra_headers={"x-thrifty-cache": "no-cache"},
        )  # fmt: skip
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        client.embeddings.create(model="text-embedding-3-small", input="thrift")
        # the dead provider refuses connections: 3 failed tries, then the fallback answers
        client.chat.completions.create(model="dead-model", messages=hello)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="no-such-model", messages=hello)
    status, _, _ = http("POST", f"{gateway.base_url}/chat/completions", body={"model": "x"},
                        headers={"Authorization": "Bearer wrong"})  # fmt: skip
    assert status == 401
    gateway.flush()
    rows = gateway.requests()
    assert len(rows) == 7, "unknown model and bad key fail before a request exists"

    m = scrape(gateway)
    assert total(m, "thrifty_requests_total") == 7
    assert total(m, "thrifty_requests_total", model="gpt-4o-mini", status="ok") == 4
    assert total(m, "thrifty_requests_total", model="gpt-4o", code="200") == 2
    assert total(m, "thrifty_requests_total", endpoint="embeddings") == 1
    assert total(m, "thrifty_request_duration_seconds_count") == 7
    assert total(m, "thrifty_time_to_first_token_seconds_count") == 1
    assert total(m, "thrifty_cache_requests_total", result="hit") == 2
    assert total(m, "thrifty_cache_hits_total", type="exact") == 2
    assert total(m, "thrifty_upstream_errors_total", provider="dead") == 3
    assert total(m, "thrifty_upstream_attempts_total", provider="dead", status="error") == 3
    assert total(m, "thrifty_cost_usd_total") == pytest.approx(sum(r["cost"] for r in rows))
    assert total(m, "thrifty_tokens_total", kind="output") == sum(r["output_tokens"] for r in rows)
    cache_saved = sum(r["savings"].get("exact_cache", 0.0) for r in rows)
    assert cache_saved > 0
    saved = total(m, "thrifty_savings_usd_total", technique="exact_cache")
    assert saved == pytest.approx(cache_saved)
    # every dollar of baseline - cost is some cause's saving (the fallback's one included)
    net = total(m, "thrifty_savings_usd_total") - total(m, "thrifty_savings_negative_usd_total")
    baseline = total(m, "thrifty_baseline_cost_usd_total")
    assert net == pytest.approx(baseline - total(m, "thrifty_cost_usd_total"), rel=1e-9)
    assert net > cache_saved, "the fallback to a cheaper model saved too"


def test_metrics_can_require_an_admin_key_or_be_off(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    guarded = start_gateway(base_config(
        upstream.url, auth={"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]},
        metrics={"require_admin": True},
    ))  # fmt: skip
    status, _, _ = request(guarded, "GET", "/metrics")
    assert status == 401
    gateway_key = {"authorization": f"Bearer {GATEWAY_KEY}"}
    status, _, _ = request(guarded, "GET", "/metrics", headers=gateway_key)
    assert status == 401
    assert "thrifty_requests_total" not in scrape(guarded, authorization=f"Bearer {ADMIN_KEY}")

    off = start_gateway(base_config(upstream.url, metrics={"enabled": False}))
    status, _, _ = request(off, "GET", "/metrics")
    assert status == 404


def test_model_labels_stay_bounded() -> None:
    recorder = MetricsRecorder(known_models=["gpt-4o"])
    names = [f"made-up-{i}" for i in range(MAX_EXTRA_MODELS + 5)]
    recorder.observe([
        RequestRecord(request_id=f"r{i}", ts=0.0, endpoint="chat.completions",
                      requested_model=name, status="ok", http_status=200)
        for i, name in enumerate(["gpt-4o", *names])
    ])  # fmt: skip
    labels = Counter(
        s.labels["model"]
        for family in recorder.registry.collect()
        if family.name == "thrifty_requests"
        for s in family.samples
        if s.name == "thrifty_requests_total"
    )
    assert labels["gpt-4o"] == 1 and labels["other"] == 1
    assert len(labels) == MAX_EXTRA_MODELS + 2


def test_one_bad_record_does_not_drop_the_rest_of_a_batch() -> None:
    """The writer hands the recorder whole batches; a record it cannot count is skipped
    on its own and the others in the same batch are still counted."""
    recorder = MetricsRecorder(known_models=["gpt-4o"])

    def record(i: int, **extra: Any) -> RequestRecord:
        return RequestRecord(request_id=f"r{i}", ts=0.0, endpoint="chat.completions",
                             requested_model="gpt-4o", status="ok", http_status=200,
                             **extra)  # fmt: skip

    bad = record(1, savings={"cache": "not a number"})  # a technique that booked a string
    recorder.observe([record(0), bad, record(2), record(3)])
    counted = sum(
        s.value
        for family in recorder.registry.collect()
        if family.name == "thrifty_requests"
        for s in family.samples
        if s.name == "thrifty_requests_total"
    )
    assert counted == 4  # the bad record's request counter ran before its savings failed
    savings = [
        s for family in recorder.registry.collect() if family.name == "thrifty_savings_usd"
        for s in family.samples
    ]  # fmt: skip
    assert savings == []


@pytest.mark.slow
def test_two_worker_processes_are_summed(tmp_path: Path, upstream: ServerThread) -> None:
    """``thrifty serve --workers 2``: any worker's /metrics counts every worker's requests."""
    port = free_port()
    config = base_config(upstream.url, server={"port": port, "workers": 2},
                         ledger={"path": str(tmp_path / "ledger.db"), "flush_interval_ms": 20},
                         logging={"level": "warning"})  # fmt: skip
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    process = subprocess.Popen(
        [sys.executable, "-m", "thrifty.cli.main", "serve", "--config", str(path)], env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/health", process, timeout=30)
        for _ in range(8):  # a new connection each time, so both workers get some
            with openai.OpenAI(base_url=f"{url}/v1", api_key=GATEWAY_KEY) as client:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
                )
        deadline = time.monotonic() + 30
        while True:  # the writers count after their next flush; then every scrape says 8
            counts = [_scrape_total(url) for _ in range(6)]
            if all(c == 8 for c in counts) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert counts == [8] * 6
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _scrape_total(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "thrifty_requests_total"
    )
