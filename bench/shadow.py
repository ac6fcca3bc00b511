"""Does shadow evaluation delay the client? The served request's latency with shadowing
off, at the default rate (5%) and at 100%, same run, same upstream.

Three ``thrifty serve`` gateways are up at once (core 0; the test upstream on core 1, with
a provider-like latency), identical but for ``shadow:``; requests go to them in rotation,
one at a time (concurrency 1), so drift on this noisy machine hits all three alike. A
shadowed request makes two candidate calls and two judge calls after its answer is sent;
at 100% those run while the next requests are served. The figures: p50/p99 of the served
request per gateway, the ratios against shadowing off, and the shadow answers each ledger
holds at the end (so the shadows really ran).

Usage::

    python -m bench.shadow [--requests 300] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.loadgen import percentile
from bench.passthrough import AUTH, start_gateway, start_upstream
from bench.reporting import result_stem, write_results

SERVED, CANDIDATES = "gpt-4o", ["gpt-4o-mini", "gpt-3.5-turbo"]
BODY = orjson.dumps(
    {"model": SERVED, "messages": [{"role": "user", "content": "Name three prime numbers."}]}
)
VARIANTS = {"off": None, "rate 5%": 0.05, "rate 100%": 1.0}


def shadow_section(rate: float | None) -> dict[str, Any]:
    """The config's ``shadow:`` section (off, or on at ``rate``) and what it needs."""
    extra: dict[str, Any] = {
        "models": {name: {"provider": "up"} for name in [SERVED, *CANDIDATES]},
    }
    if rate is not None:
        extra["shadow"] = {
            "enabled": True,
            "rate": rate,
            "max_per_hour": 0,
            "candidates": CANDIDATES,
            "daily_budget_usd": 1000.0,
        }
    return extra


async def rotate(urls: dict[str, str], requests: int, warmup: int = 30) -> dict[str, list[float]]:
    """``requests`` timed requests per gateway (ms), in rotation, after ``warmup`` each."""
    headers = {"authorization": AUTH, "content-type": "application/json"}
    out: dict[str, list[float]] = {name: [] for name in urls}
    async with aiohttp.ClientSession() as session:
        for i in range(requests + warmup):
            names = list(urls)
            turn = names[i % len(names):] + names[: i % len(names)]
            for name in turn:
                start = time.perf_counter()
                async with session.post(urls[name], data=BODY, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{name}: HTTP {resp.status}")
                if i >= warmup:
                    out[name].append((time.perf_counter() - start) * 1000)
    return out


def shadow_rows(ledger: Path) -> int:
    with sqlite3.connect(ledger) as db:
        try:
            return int(db.execute("SELECT count(*) FROM shadow_answers").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="thrifty-bench-shadow-") as tmp:
        workdir = Path(tmp)
        upstream, up_port = start_upstream(workdir, args.latency_ms)
        servers, urls = [], {}
        try:
            for index, (name, rate) in enumerate(VARIANTS.items()):
                server, url = start_gateway(
                    workdir, f"gw{index}", up_port,
                    ledger={"path": str(workdir / f"gw{index}.db"), "capture_bodies": True},
                    **shadow_section(rate),
                )  # fmt: skip
                servers.append(server)
                urls[name] = url
            timings = asyncio.run(rotate(urls, args.requests))
            time.sleep(3)  # the last shadows finish and the ledger flushes
        finally:
            for server in servers:
                server.stop()
            upstream.stop()
        rows = {name: shadow_rows(workdir / f"gw{i}.db") for i, name in enumerate(VARIANTS)}
    base = timings["off"]
    out: dict[str, Any] = {"requests": args.requests, "latency_ms": args.latency_ms}
    for name, values in timings.items():
        out[name] = {
            "p50": statistics.median(values),
            "p99": percentile(values, 0.99),
            "p50_vs_off": statistics.median(values) / statistics.median(base),
            "p99_vs_off": percentile(values, 0.99) / percentile(base, 0.99),
            "shadow_answers": rows[name],
        }
    return out


def write_report(result: dict[str, Any], stem: Path) -> Path:
    lines = [
        "# Shadow evaluation: the served request's latency",
        "",
        f"{result['requests']} requests per gateway at concurrency 1, in rotation; upstream "
        f"latency {result['latency_ms']} ms; 2 candidates + 2 judge calls per shadowed request.",
        "",
        "| shadowing | p50 ms | p99 ms | p50 vs off | p99 vs off | shadow answers stored |",
        "|---|---|---|---|---|---|",
    ]
    for name in VARIANTS:
        r = result[name]
        lines.append(
            f"| {name} | {r['p50']:.2f} | {r['p99']:.2f} | {r['p50_vs_off']:.3f} | "
            f"{r['p99_vs_off']:.3f} | {r['shadow_answers']} |"
        )
    return write_results(stem, result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    result = run(args)
    path = write_report(result, result_stem("shadow"))
    sys.stdout.write(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
