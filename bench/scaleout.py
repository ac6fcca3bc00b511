"""Scale-out: requests/s with one and two gateway replicas on shared stores, and what the
shared stores (Redis cache, PostgreSQL ledger) add per request compared with SQLite.

Same run, same test upstream, same load generator (aiohttp, this process). Configurations:

- ``sqlite``: exact cache in SQLite, ledger in SQLite (the zero-setup default), 1 replica;
- ``shared``: exact cache in Redis, ledger in PostgreSQL, 1 replica;
- ``shared x2``: the same, 2 replicas; the load is split round-robin between them;
- ``sqlite x2``: 2 replicas sharing the SQLite files (one machine only), for reference.

Redis and PostgreSQL are started here as plain processes (as the tests do). Workloads:
a cache *miss* per request (unique prompt, temperature 0: a cache lookup, a cache write
and a ledger row each), and a cache *hit* per request (the same request over and over).
Figures: c=1 latency p50/p99 per workload (the per-request overhead) and requests/s at
c=32 (misses). Usage::

    python -m bench.scaleout [--seconds 6] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
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
from tests.shared_servers import PostgresServer, RedisServer, _pg_bin

from thrifty.cli.processes import free_port, wait_healthy

RESULTS = Path(__file__).parent / "results"
KEY = "bench-key"
HEADERS = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
_counter = itertools.count()


def body(hit: bool) -> bytes:
    text = "Say hello in five words." if hit else f"Say hello to visitor {next(_counter)}."
    return orjson.dumps(
        {"model": "gpt-4o-mini", "temperature": 0,
         "messages": [{"role": "user", "content": text}]}
    )  # fmt: skip


def spawn(args: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "thrifty.cli.main", *args])
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process, timeout=30)
    except RuntimeError:
        process.kill()
        raise
    return process


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latencies(urls: list[str], n: int, hit: bool) -> list[float]:
    """Sequential latencies in ms after 30 warm-up requests; checks the cache outcome."""
    out: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(n + 30):
            start = time.perf_counter()
            async with session.post(urls[i % len(urls)], data=body(hit), headers=HEADERS) as r:
                await r.read()
                elapsed = time.perf_counter() - start
                assert r.status == 200, r.status
                if i >= 30:
                    expected = "hit-exact" if hit else "miss"
                    assert r.headers.get("x-thrifty-cache") == expected, r.headers
                    out.append(elapsed * 1000)
    return out


async def throughput(urls: list[str], concurrency: int, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(n: int) -> None:
            nonlocal done
            url = urls[n % len(urls)]  # round-robin "load balancer"
            while time.perf_counter() < stop:
                async with session.post(url, data=body(False), headers=HEADERS) as resp:
                    await resp.read()
                    if resp.status == 200:
                        done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return done / (time.perf_counter() - started)


def write_config(workdir: Path, name: str, port: int, up_port: int, stores: dict) -> Path:
    config = {
        "server": {"port": port},
        "auth": {"keys": [KEY]},
        "providers": {"up": {"base_url": f"http://127.0.0.1:{up_port}/v1"}},
        "models": {"gpt-4o-mini": {"provider": "up"}},
        "logging": {"level": "warning"},
        **stores,
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def measure(
    workdir: Path, name: str, up_port: int, stores: dict, replicas: int, args: Any
) -> dict[str, Any]:
    ports = [free_port() for _ in range(replicas)]
    configs = [write_config(workdir, f"{name}{i}", p, up_port, stores) for i, p in enumerate(ports)]
    processes = [
        spawn(["serve", "--config", str(c)], p) for c, p in zip(configs, ports, strict=True)
    ]
    urls = [f"http://127.0.0.1:{p}/v1/chat/completions" for p in ports]
    try:
        miss = asyncio.run(latencies(urls, args.requests, hit=False))
        hit = asyncio.run(latencies(urls, args.requests, hit=True))
        rps = asyncio.run(throughput(urls, 32, args.seconds))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    return {
        "replicas": replicas,
        "miss_p50_ms": round(statistics.median(miss), 3),
        "miss_p99_ms": round(percentile(miss, 0.99), 3),
        "hit_p50_ms": round(statistics.median(hit), 3),
        "hit_p99_ms": round(percentile(hit, 0.99), 3),
        "rps_c32": round(rps),
    }


def run(args: Any) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="thrifty-scaleout-"))
    redis_binary, initdb = shutil.which("redis-server"), _pg_bin("initdb")
    if redis_binary is None or initdb is None:
        raise SystemExit("install: apt-get install redis-server postgresql")
    redis = RedisServer(redis_binary, workdir).start()
    postgres = PostgresServer(Path(initdb).parent).start()
    up_port = free_port()
    upstream = spawn(["upstream", "--port", str(up_port)], up_port)
    results: dict[str, Any] = {}
    try:
        sqlite = {
            "cache": {"enabled": True, "store": "sqlite", "path": str(workdir / "cache.db")},
            "ledger": {"path": str(workdir / "ledger.db")},
        }
        for name, stores, replicas in (
            ("sqlite", sqlite, 1),
            ("shared", None, 1),
            ("shared x2", None, 2),
            ("sqlite x2", sqlite, 2),
        ):
            if stores is None:  # a fresh database and key prefix per configuration
                stores = {
                    "cache": {"enabled": True, "store": "redis"},
                    "redis": {"url": redis.url, "prefix": f"{name.replace(' ', '')}:"},
                    "ledger": {"store": "postgres", "dsn": postgres.new_database()},
                }
            if name == "sqlite x2":
                stores = {
                    "cache": {**sqlite["cache"], "path": str(workdir / "cache2.db")},
                    "ledger": {"path": str(workdir / "ledger2.db")},
                }
            results[name] = measure(workdir, name.replace(" ", ""), up_port, stores, replicas, args)
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)
        redis.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    base, shared = results["sqlite"], results["shared"]
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cpus, shared with other work",
        "configs": results,
        "ratios": {
            "shared_vs_sqlite_miss_p50": round(shared["miss_p50_ms"] / base["miss_p50_ms"], 2),
            "shared_vs_sqlite_hit_p50": round(shared["hit_p50_ms"] / base["hit_p50_ms"], 2),
            "shared_minus_sqlite_miss_p50_ms": round(
                shared["miss_p50_ms"] - base["miss_p50_ms"], 3
            ),
            "shared_minus_sqlite_hit_p50_ms": round(shared["hit_p50_ms"] - base["hit_p50_ms"], 3),
            "shared_vs_sqlite_rps": round(shared["rps_c32"] / base["rps_c32"], 2),
            "shared_x2_vs_x1_rps": round(results["shared x2"]["rps_c32"] / shared["rps_c32"], 2),
            "sqlite_x2_vs_x1_rps": round(results["sqlite x2"]["rps_c32"] / base["rps_c32"], 2),
        },
    }


def write_report(result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{dt.date.today().isoformat()}-scaleout"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    r = result["ratios"]
    lines = [
        f"# Scale-out: shared stores and replicas ({result['date']}, {result['machine']})",
        "",
        "Same run, same test upstream, gateways as `thrifty serve` processes (1 worker each,",
        "unpinned), Redis 7 and PostgreSQL 15 as local processes. Miss = unique prompt (cache",
        "lookup + cache write + ledger row); hit = the same request (exact hit + ledger row).",
        "",
        "| config | replicas | miss p50 / p99 (c=1) | hit p50 / p99 (c=1) | req/s (c=32, misses) |",
        "|---|---|---|---|---|",
    ]
    for name, c in result["configs"].items():
        lines.append(
            f"| {name} | {c['replicas']} | {c['miss_p50_ms']} / {c['miss_p99_ms']} ms | "
            f"{c['hit_p50_ms']} / {c['hit_p99_ms']} ms | {c['rps_c32']} |"
        )
    lines += [
        "",
        f"Per-request overhead of the shared stores vs SQLite (1 replica, p50): misses "
        f"×{r['shared_vs_sqlite_miss_p50']} ({r['shared_minus_sqlite_miss_p50_ms']:+} ms), "
        f"hits ×{r['shared_vs_sqlite_hit_p50']} ({r['shared_minus_sqlite_hit_p50_ms']:+} ms); "
        f"requests/s ×{r['shared_vs_sqlite_rps']}.",
        f"Two replicas vs one: shared stores ×{r['shared_x2_vs_x1_rps']}, "
        f"SQLite ×{r['sqlite_x2_vs_x1_rps']} requests/s.",
        "",
        "This machine has 2 cores for the load generator, the upstream, Redis, PostgreSQL and",
        "the replicas (and other work), so a second replica cannot double throughput here;",
        "on separate machines each replica brings its own cores.",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines))
    return stem.with_suffix(".md")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    report = write_report(run(args))
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
