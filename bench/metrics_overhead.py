"""What Prometheus metrics cost a request: the gateway with ``metrics.enabled`` on vs off,
same run, same upstream, rounds interleaved (on, off, on, off, …) so drift hits both.

Two figures:

* **end to end**: latency p50/p99 at concurrency 1, requests/s at concurrency 32 and the
  gateway process's CPU time per request (all threads, from ``/proc``) through
  ``thrifty serve`` (1 worker, core 0; upstream on core 1), medians over rounds;
* **on the writer thread**: CPU time of ``MetricsRecorder.observe`` per record against
  the ledger's own ``SqliteLedgerStore.write_many`` per record — the work the metrics add
  to the thread they run on (the request path itself only queues the record).

Usage::

    python -m bench.metrics_overhead [--rounds 3] [--requests 800] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.loadgen import percentile, run_load
from bench.passthrough import AUTH, BODY, start_gateway, start_upstream
from bench.reporting import result_stem, write_results
from thrifty.ledger.record import AttemptRecord, RequestRecord
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.metrics.recorder import MetricsRecorder
from thrifty.usage import Usage


async def latencies(url: str, n: int, warmup: int = 50) -> list[float]:
    """``n`` sequential request latencies in ms, after ``warmup`` unmeasured requests."""
    headers = {"authorization": AUTH, "content-type": "application/json"}
    out: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(n + warmup):
            start = time.perf_counter()
            async with session.post(url, data=BODY, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}")
            if i >= warmup:
                out.append((time.perf_counter() - start) * 1000)
    return out


def one_round(workdir: Path, up_port: int, metrics: bool, requests: int, seconds: float) -> dict:
    name = f"metrics-{'on' if metrics else 'off'}"
    gateway, url = start_gateway(workdir, name, up_port, metrics={"enabled": metrics})
    try:
        cpu_start = cpu_seconds(gateway.pid)
        lat = asyncio.run(latencies(url, requests))
        load = run_load(url, BODY, connections=32, seconds=seconds, auth=AUTH, warmup=0)
        time.sleep(0.5)  # the writer's last flush (200 ms) lands in this round's CPU time
        cpu = cpu_seconds(gateway.pid) - cpu_start
    finally:
        gateway.stop()
    served = requests + 50 + load.requests  # latencies() adds 50 warm-up requests
    return {"p50": statistics.median(lat), "p99": percentile(lat, 0.99), "rps": load.rps,
            "cpu_us": cpu / served * 1e6}  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample_records(n: int) -> list[RequestRecord]:
    """Records shaped like real ones: usage, savings, a cascade, two attempts."""
    out = []
    for i in range(n):
        rid = f"thr-bench-{i:08d}"
        attempts = [
            AttemptRecord(request_id=rid, seq=s, ts=time.time(), purpose=p, model=m,
                          upstream_model=m, provider="up", status="ok", http_status=200,
                          usage=Usage(input_tokens=40, output_tokens=20), cost=0.0001,
                          latency_ms=12.0)
            for s, (p, m) in enumerate([("cascade", "gpt-4o-mini"), ("main", "gpt-4o")])
        ]  # fmt: skip
        out.append(RequestRecord(
            request_id=rid, ts=time.time(), endpoint="chat.completions",
            requested_model="gpt-4o", model="gpt-4o", provider="up", status="ok",
            http_status=200, usage=Usage(input_tokens=40, output_tokens=20), cost=0.0002,
            baseline_model="gpt-4o", baseline_cost=0.00025, latency_ms=30.0,
            techniques={"cache": {"result": "miss", "type": "exact"},
                        "cascade": {"start": "gpt-4o-mini", "accepted": "gpt-4o", "tiers": []}},
            savings={"cascade": 0.00005}, attempts=attempts, tags={"team": "a"},
        ))  # fmt: skip
    return out


def writer_thread_cost(workdir: Path, n: int = 20_000, batch: int = 500) -> dict[str, float]:
    records = sample_records(n)
    store = SqliteLedgerStore(workdir / "micro.db")
    recorder = MetricsRecorder(["gpt-4o", "gpt-4o-mini"])
    store_s = metrics_s = 0.0
    for start in range(0, n, batch):
        chunk = records[start : start + batch]
        t0 = time.process_time()
        store.write_many(chunk)
        t1 = time.process_time()
        recorder.observe(chunk)
        metrics_s += time.process_time() - t1
        store_s += t1 - t0
    store.close()
    return {
        "store_us_per_record": round(store_s / n * 1e6, 2),
        "metrics_us_per_record": round(metrics_s / n * 1e6, 2),
        "metrics_vs_store": round(metrics_s / store_s, 3),
    }


def run(rounds: int, requests: int, seconds: float) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="thrifty-bench-metrics-"))
    upstream, up_port = start_upstream(workdir)
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    try:
        for _ in range(rounds):
            for metrics in (True, False):
                results[metrics].append(one_round(workdir, up_port, metrics, requests, seconds))
    finally:
        upstream.stop()

    def med(metrics: bool, key: str) -> float:
        return statistics.median(r[key] for r in results[metrics])

    on = {k: round(med(True, k), 3) for k in ("p50", "p99", "rps", "cpu_us")}
    off = {k: round(med(False, k), 3) for k in ("p50", "p99", "rps", "cpu_us")}
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cpus",
        "rounds": rounds,
        "metrics_on": on,
        "metrics_off": off,
        "ratio_on_off": {k: round(on[k] / off[k], 3) for k in on},
        "rounds_detail": {"on": results[True], "off": results[False]},
        "writer_thread": writer_thread_cost(workdir),
    }


def write_report(result: dict[str, Any]) -> Path:
    stem = result_stem("metrics-overhead")
    on, off, ratio, w = (result[k] for k in ("metrics_on", "metrics_off", "ratio_on_off",
                                             "writer_thread"))  # fmt: skip
    lines = [
        f"# Metrics overhead ({result['date']}, {result['machine']})",
        "",
        f"`thrifty serve` (1 worker, ledger on) with `metrics.enabled` on vs off, same run, "
        f"{result['rounds']} interleaved rounds each, medians. Test upstream on another core.",
        "",
        "| figure | metrics off | metrics on | on / off |",
        "|---|---|---|---|",
        f"| c=1 latency p50 | {off['p50']} ms | {on['p50']} ms | {ratio['p50']} |",
        f"| c=1 latency p99 | {off['p99']} ms | {on['p99']} ms | {ratio['p99']} |",
        f"| requests/s at c=32 | {off['rps']:.0f} | {on['rps']:.0f} | {ratio['rps']} |",
        f"| gateway CPU per request (all threads) | {off['cpu_us']:.0f} µs | {on['cpu_us']:.0f} µs "
        f"| {ratio['cpu_us']} |",
        "",
        "Per round (p50 ms / rps), on: "
        + ", ".join(f"{r['p50']:.2f}/{r['rps']:.0f}" for r in result["rounds_detail"]["on"])
        + "; off: "
        + ", ".join(f"{r['p50']:.2f}/{r['rps']:.0f}" for r in result["rounds_detail"]["off"])
        + ". The machine is shared: only differences larger than the spread between rounds "
        "mean anything.",
        "",
        "On the ledger writer thread (where metrics are updated), CPU per record: SQLite write "
        f"{w['store_us_per_record']} µs, metrics {w['metrics_us_per_record']} µs "
        f"(metrics / store = {w['metrics_vs_store']}).",
        "",
    ]
    return write_results(stem, result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    report = write_report(run(args.rounds, args.requests, args.seconds))
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
