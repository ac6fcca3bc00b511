"""Cost of admission: the same load through ``thrifty serve`` with a config key and no
governance (the baseline), with a virtual key, and with a virtual key under a budget and
rate limits (memory store, then SQLite store), in the same run, reported as ratios.

Processes: upstream pinned to core 1, each gateway (1 worker) in turn to core 0, the load
generator (aiohttp, this process) unpinned. Limits are set high enough never to refuse:
what is measured is the reserve/settle and counter work per request. Usage::

    python -m bench.admission [--seconds 2] [--requests 800] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.passthrough import BODY, KEY, percentile, spawn
from bench.reporting import result_stem, write_results
from thrifty.cli.processes import free_port

HIGH = 10**9


async def interleaved_latencies(targets: list[tuple[str, str]], n: int) -> list[list[float]]:
    """Request latencies in ms, one request to each target in turn (after 50 warm-up
    rounds), so drift in the machine's load hits every target alike."""
    out: list[list[float]] = [[] for _ in targets]
    async with aiohttp.ClientSession() as session:
        for i in range(n + 50):
            for index, (url, key) in enumerate(targets):
                headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
                start = time.perf_counter()
                async with session.post(url, data=BODY, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                if i >= 50:
                    out[index].append((time.perf_counter() - start) * 1000)
    return out


async def throughput(url: str, key: str, concurrency: int, seconds: float) -> float:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    done = 0
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                async with s.post(url, data=BODY, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                    done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


async def store_costs(workdir: Path, n: int) -> dict[str, float]:
    """µs per reserve+settle (two buckets) and per rate-limit hit, memory vs SQLite."""
    from thrifty.governance.budgets.base import BudgetBucket
    from thrifty.governance.budgets.memory import MemoryBudgetStore, MemoryRateLimitStore
    from thrifty.governance.budgets.sqlite import SqliteBudgetStore, SqliteRateLimitStore

    buckets = (
        BudgetBucket("key:k", "day", "2026-11-28", 1e9, None),
        BudgetBucket("team:t", "month", "2026-11", 1e9, None),
    )
    out: dict[str, float] = {}
    for name, budgets, rates in (
        ("memory", MemoryBudgetStore(), MemoryRateLimitStore()),
        ("sqlite", SqliteBudgetStore(workdir / "b.db"), SqliteRateLimitStore(workdir / "b.db")),
    ):
        started = time.perf_counter()
        for _ in range(n):
            await budgets.settle(await budgets.reserve(buckets, 0.001, 60), 0.0005)
        out[f"{name}_reserve_settle_us"] = round((time.perf_counter() - started) / n * 1e6, 1)
        started = time.perf_counter()
        for _ in range(n):
            await rates.hit("rpm:k", 10**9, 1, 60)
        out[f"{name}_rate_hit_us"] = round((time.perf_counter() - started) / n * 1e6, 1)
        await budgets.aclose()
        await rates.aclose()
    return out


def write_config(workdir: Path, name: str, up_port: int, port: int, governance: Any) -> Path:
    config: dict[str, Any] = {
        "server": {"port": port},
        "auth": {"keys": [KEY], "admin_keys": ["bench-admin"]},
        "providers": {"up": {"base_url": f"http://127.0.0.1:{up_port}/v1"}},
        "models": {"gpt-4o-mini": {"provider": "up"}},
        "ledger": {"path": str(workdir / f"{name}-ledger.db")},
        "logging": {"level": "warning"},
    }
    if governance is not None:
        config["governance"] = {
            "keys_path": str(workdir / f"{name}-keys.db"),
            "store_path": str(workdir / f"{name}-budgets.db"),
            **governance,
        }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def create_key(config: Path, limited: bool) -> str:
    args = [sys.executable, "-m", "thrifty.cli.main", "keys", "create", "--config", str(config)]
    args += ["--owner", "bench", "--team", "bench", "--json"]
    if limited:
        args += ["--budget", f"day={HIGH}", "--rpm", str(HIGH), "--tpm", str(HIGH)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return str(json.loads(out)["key"])


CASES: list[tuple[str, str, Any, bool]] = [
    ("baseline", "config key, no governance", None, False),
    ("virtual_key", "virtual key, no limits", {}, False),
    ("memory", "virtual key + day budget + rpm + tpm, memory store", {"store": "memory"}, True),
    ("sqlite", "virtual key + day budget + rpm + tpm, SQLite store", {"store": "sqlite"}, True),
]


def run(seconds: float, requests: int, rounds: int) -> dict[str, Any]:
    """All gateways stay up. Latency: interleaved request by request. Requests/s: bursts of
    ``seconds`` per gateway in turn, ``rounds`` times over, median per gateway."""
    workdir = Path(tempfile.mkdtemp(prefix="thrifty-bench-admission-"))
    up_port = free_port()
    upstream = spawn(["upstream", "--port", str(up_port)], 1, up_port)
    gateways: dict[str, tuple[subprocess.Popen[bytes], str, str]] = {}
    rps: dict[str, list[float]] = {}
    try:
        for name, _, governance, limited in CASES:
            port = free_port()
            config = write_config(workdir, name, up_port, port, governance)
            key = KEY if governance is None else create_key(config, limited)
            process = spawn(["serve", "--config", str(config)], 0, port)
            gateways[name] = (process, f"http://127.0.0.1:{port}/v1/chat/completions", key)
            rps[name] = []
        targets = [(url, key) for _, url, key in gateways.values()]
        measured = asyncio.run(interleaved_latencies(targets, requests))
        latency = dict(zip(gateways, measured, strict=True))
        for _ in range(rounds):
            for name, (_, url, key) in gateways.items():
                rps[name].append(asyncio.run(throughput(url, key, 32, seconds)))
    finally:
        for process, _, _ in gateways.values():
            process.terminate()
            process.wait(timeout=30)
        upstream.terminate()
        upstream.wait(timeout=30)
    cases: dict[str, Any] = {}
    for name, label, _, _ in CASES:
        cases[name] = {
            "label": label,
            "p50_ms": round(statistics.median(latency[name]), 3),
            "p99_ms": round(percentile(latency[name], 0.99), 3),
            "rps_c32": round(statistics.median(rps[name])),
        }
    base = cases["baseline"]
    for figures in cases.values():
        figures["p50_ratio"] = round(figures["p50_ms"] / base["p50_ms"], 2)
        figures["rps_ratio"] = round(figures["rps_c32"] / base["rps_c32"], 2)
    stores = asyncio.run(store_costs(workdir, 2000))
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cpus",
        "requests_c1": requests,
        "seconds_c32": seconds,
        "rounds": rounds,
        "cases": cases,
        "stores": stores,
    }


def write_report(result: dict[str, Any]) -> Path:
    stem = result_stem("admission")
    lines = [
        f"# Admission overhead ({result['date']}, {result['machine']})",
        "",
        "Four gateways up at once (all on core 0, upstream on core 1). Latency: "
        f"{result['requests_c1']} requests",
        "to each, sent one to each gateway in turn (so load drift on this shared machine hits",
        "all alike), after 50 warm-up rounds. Requests/s: concurrency 32,",
        f"{result['seconds_c32']} s per gateway in turn, {result['rounds']} rounds, median.",
        "Ratios are against the",
        "baseline measured in this run.",
        "",
        "| case | p50 | p99 | p50 vs baseline | req/s (c=32) | req/s vs baseline |",
        "|---|---|---|---|---|---|",
    ]
    for figures in result["cases"].values():
        lines.append(
            f"| {figures['label']} | {figures['p50_ms']} ms | {figures['p99_ms']} ms "
            f"| {figures['p50_ratio']}× | {figures['rps_c32']} | {figures['rps_ratio']}× |"
        )
    stores = result["stores"]
    lines += [
        "",
        "Store operations in-process, 2000 sequential (µs per operation):",
        "",
        "| store | reserve + settle (2 buckets) | rate-limit hit |",
        "|---|---|---|",
        f"| memory | {stores['memory_reserve_settle_us']} | {stores['memory_rate_hit_us']} |",
        f"| SQLite | {stores['sqlite_reserve_settle_us']} | {stores['sqlite_rate_hit_us']} |",
    ]
    return write_results(stem, result, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    path = write_report(run(args.seconds, args.requests, args.rounds))
    print(path.read_text())


if __name__ == "__main__":
    main()
