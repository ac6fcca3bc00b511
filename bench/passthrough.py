"""Pass-through overhead of the gateway: the same load direct to the test upstream and
through ``thrifty serve`` (ledger on), in the same run, reported as ratios.

Processes: upstream pinned to core 1, gateway (1 worker) to core 0, the load generator
(aiohttp, this process) unpinned. Figures: latency p50/p99 at concurrency 1, requests/s at
concurrency 32, streaming time to first chunk, and an exact cache hit end to end (a second
gateway with the in-memory exact cache on, the same request sent over and over). Usage::

    python -m bench.passthrough [--seconds 8] [--requests 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from thrifty.cli.processes import free_port, wait_healthy

RESULTS = Path(__file__).parent / "results"
BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in five words."}]}
)
STREAM_BODY = orjson.dumps({**orjson.loads(BODY), "stream": True})
CACHE_BODY = orjson.dumps({**orjson.loads(BODY), "temperature": 0})
KEY = "bench-key"


def spawn(args: list[str], core: int, port: int) -> subprocess.Popen[bytes]:
    prefix = ["taskset", "-c", str(core)] if shutil.which("taskset") else []
    process = subprocess.Popen([*prefix, sys.executable, "-m", "thrifty.cli.main", *args])
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process, timeout=20)
    except RuntimeError:
        process.kill()
        raise
    return process


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latencies(
    url: str, n: int, body: bytes, first_byte: bool = False, cache_hit: bool = False
) -> list[float]:
    """Sequential request latencies in ms (after 50 warm-up requests); with ``cache_hit``,
    every measured reply must have been served by the exact cache."""
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    out: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(n + 50):
            start = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                if first_byte:
                    await resp.content.readany()
                    elapsed = time.perf_counter() - start
                    await resp.read()
                else:
                    await resp.read()
                    elapsed = time.perf_counter() - start
                assert resp.status == 200, resp.status
                if cache_hit and i >= 50:
                    assert resp.headers.get("x-thrifty-cache") == "hit-exact", resp.headers
            if i >= 50:  # warm-up
                out.append(elapsed * 1000)
    return out


async def throughput(url: str, concurrency: int, seconds: float) -> float:
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    done = 0
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                async with session.post(url, data=BODY, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def summarise(direct: list[float], gateway: list[float]) -> dict[str, float]:
    d50, g50 = statistics.median(direct), statistics.median(gateway)
    d99, g99 = percentile(direct, 0.99), percentile(gateway, 0.99)
    return {
        "direct_p50_ms": round(d50, 3), "gateway_p50_ms": round(g50, 3),
        "added_p50_ms": round(g50 - d50, 3), "ratio_p50": round(g50 / d50, 2),
        "direct_p99_ms": round(d99, 3), "gateway_p99_ms": round(g99, 3),
        "added_p99_ms": round(g99 - d99, 3),
    }  # fmt: skip


def gateway_config(workdir: Path, name: str, up_port: int, gw_port: int, **extra: Any) -> Path:
    config = {
        "server": {"port": gw_port},
        "auth": {"keys": [KEY]},
        "providers": {"up": {"base_url": f"http://127.0.0.1:{up_port}/v1"}},
        "models": {"gpt-4o-mini": {"provider": "up"}},
        "ledger": {"path": str(workdir / f"{name}.db")},
        "logging": {"level": "warning"},
        **extra,
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cache_hit_latencies(workdir: Path, up_port: int, requests: int) -> list[float]:
    """An exact hit end to end: a gateway with the in-memory exact cache, one request
    (temperature 0) answered once by the upstream, then served from the cache."""
    port = free_port()
    cache = {"enabled": True, "store": "memory", "cache_nondeterministic": True}
    config = gateway_config(workdir, "cache", up_port, port, cache=cache)
    gateway = spawn(["serve", "--config", str(config)], 0, port)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return asyncio.run(latencies(url, requests, CACHE_BODY, cache_hit=True))
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)


def run(seconds: float, requests: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="thrifty-bench-"))
    up_port, gw_port = free_port(), free_port()
    config = gateway_config(workdir, "bench", up_port, gw_port)
    upstream = spawn(["upstream", "--port", str(up_port)], 1, up_port)
    gateway = spawn(["serve", "--config", str(config)], 0, gw_port)
    direct_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
    gateway_url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    try:
        c1 = summarise(
            asyncio.run(latencies(direct_url, requests, BODY)),
            asyncio.run(latencies(gateway_url, requests, BODY)),
        )
        ttft = summarise(
            asyncio.run(latencies(direct_url, requests // 3, STREAM_BODY, first_byte=True)),
            asyncio.run(latencies(gateway_url, requests // 3, STREAM_BODY, first_byte=True)),
        )
        direct_rps = asyncio.run(throughput(direct_url, 32, seconds))
        gateway_rps = asyncio.run(throughput(gateway_url, 32, seconds))
        gateway.terminate()
        gateway.wait(timeout=30)
        hits = cache_hit_latencies(workdir, up_port, requests)
    finally:
        for process in (gateway, upstream):
            process.terminate()
            process.wait(timeout=30)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cpus",
        "concurrency_1": c1,
        "stream_first_chunk": ttft,
        "rps_concurrency_32": {
            "direct": round(direct_rps),
            "gateway": round(gateway_rps),
            "ratio": round(gateway_rps / direct_rps, 2),
        },
        "exact_cache_hit": {
            "p50_ms": round(statistics.median(hits), 3),
            "p99_ms": round(percentile(hits, 0.99), 3),
        },
    }


def _row(label: str, figures: dict[str, float], key: str) -> str:
    direct, gateway, added = (figures[f"{k}_{key}_ms"] for k in ("direct", "gateway", "added"))
    return f"| {label} | {direct} ms | {gateway} ms | +{added} ms |"


def write_report(result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{dt.date.today().isoformat()}-passthrough"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    c1, ttft = result["concurrency_1"], result["stream_first_chunk"]
    rps, hit = result["rps_concurrency_32"], result["exact_cache_hit"]
    lines = [
        f"# Pass-through overhead ({result['date']}, {result['machine']})",
        "",
        "Same run, same test upstream; gateway with ledger on, 1 worker. Load generator: aiohttp.",
        "",
        "| figure | direct | via gateway | added / ratio |",
        "|---|---|---|---|",
        _row("c=1 latency p50", c1, "p50"),
        _row("c=1 latency p99", c1, "p99"),
        _row("stream first chunk p50", ttft, "p50"),
        _row("stream first chunk p99", ttft, "p99"),
        f"| requests/s at c=32 | {rps['direct']} | {rps['gateway']} | ×{rps['ratio']} |",
        "",
        "Exact cache hit end to end (c=1, in-memory store; the upstream is not called):",
        f"p50 {hit['p50_ms']} ms, p99 {hit['p99_ms']} ms (direct to upstream: p50 "
        f"{c1['direct_p50_ms']} ms).",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines))
    return stem.with_suffix(".md")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--requests", type=int, default=1500)
    args = parser.parse_args()
    report = write_report(run(args.seconds, args.requests))
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
