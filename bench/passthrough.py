"""Pass-through overhead of the gateway: the same load direct to the test upstream and
through ``thrifty serve`` (ledger on, 1 worker), in the same run, reported as ratios.

Processes and cores (2-core machine): the upstream on core 1, the gateway on core 0. The
load generator (``wrk``, see :mod:`bench.loadgen`) runs on the core the target does not
use: core 0 when measuring the upstream directly, core 1 (shared with the upstream) when
measuring the gateway. Each round measures direct then gateway back to back; the report
gives the median over ``--rounds`` and the range, because other work on a shared machine
moves single figures.

Figures: latency p50/p99 at concurrency 1 (added = gateway - direct); requests/s at
``--concurrency`` (default 32) and the gateway's CPU time per request (user + system,
all threads, from ``/proc``: steadier than requests/s when the machine is shared); the
same for a no-logic proxy on the same stack (:mod:`bench.floor_proxy`), so the report
separates what the stack costs from what Thrifty's own work costs;
streaming time to first chunk (Python client: wrk cannot time the first byte); an
exact cache hit end to end (a second gateway with the in-memory exact cache, one
request answered once by the upstream, then from the cache); the gateway's RSS after
the load. Writes ``bench/results/<date>.{md,json}``. Usage::

    python -m bench.passthrough [--rounds 3] [--seconds 5] [--concurrency 32]
                                [--upstream-latency-ms 0] [--no-wrk]
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
import orjson
import yaml

from bench.loadgen import FALLBACK_NOTE, LoadResult, have_wrk, percentile, run_load
from bench.reporting import result_stem, write_results
from bench.servers import THRIFTY, Server, spawn
from thrifty.cli.processes import free_port

KEY = "bench-key"
AUTH = f"Bearer {KEY}"
BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in five words."}]}
)
STREAM_BODY = orjson.dumps({**orjson.loads(BODY), "stream": True})
CACHE_BODY = orjson.dumps({**orjson.loads(BODY), "temperature": 0})
UPSTREAM_CORE, GATEWAY_CORE = 1, 0


def gateway_config(workdir: Path, name: str, up_port: int, gw_port: int, **extra: Any) -> Path:
    """Pass-through config: one model on the test upstream, ledger on, quiet logs."""
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


def start_upstream(workdir: Path, latency_ms: float = 0.0) -> tuple[Server, int]:
    port = free_port()
    argv = [*THRIFTY, "upstream", "--port", str(port), "--latency-ms", str(latency_ms)]
    server = spawn("upstream", argv, UPSTREAM_CORE, f"http://127.0.0.1:{port}/health", workdir)
    return server, port


def start_gateway(workdir: Path, name: str, up_port: int, **extra: Any) -> tuple[Server, str]:
    """A gateway on the gateway core; returns it and its chat-completions URL."""
    port = free_port()
    config = gateway_config(workdir, name, up_port, port, **extra)
    argv = [*THRIFTY, "serve", "--config", str(config), "--workers", "1"]
    server = spawn(name, argv, GATEWAY_CORE, f"http://127.0.0.1:{port}/health", workdir)
    return server, f"http://127.0.0.1:{port}/v1/chat/completions"


def start_floor(workdir: Path, up_port: int) -> tuple[Server, str]:
    """The no-logic proxy of :mod:`bench.floor_proxy` on the gateway core."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.floor_proxy", "--port", str(port)]
    argv += ["--upstream", f"http://127.0.0.1:{up_port}/v1"]
    root = str(Path(__file__).resolve().parents[1])
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    server = spawn("floor", argv, GATEWAY_CORE, f"http://127.0.0.1:{port}/health", workdir, env)
    return server, f"http://127.0.0.1:{port}/v1/chat/completions"


async def first_chunk_latencies(url: str, n: int) -> list[float]:
    """Time to the first body bytes of ``n`` sequential streamed requests (ms), after 50
    warm-up requests; every answer must be a 200 event stream."""
    headers = {"authorization": AUTH, "content-type": "application/json"}
    out: list[float] = []
    async with aiohttp.ClientSession() as session:
        for i in range(n + 50):
            start = time.perf_counter()
            async with session.post(url, data=STREAM_BODY, headers=headers) as resp:
                await resp.content.readany()
                elapsed = time.perf_counter() - start
                await resp.read()
                if resp.status != 200 or "text/event-stream" not in resp.content_type:
                    raise RuntimeError(f"{url}: streamed answer was HTTP {resp.status}")
            if i >= 50:
                out.append(elapsed * 1000)
    return out


async def check_cache_hit(url: str) -> None:
    """Prime the exact cache, then check the same request is answered from it."""
    headers = {"authorization": AUTH, "content-type": "application/json"}
    hit = None
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # the first answer fills the cache, the second must come from it
            async with session.post(url, data=CACHE_BODY, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}")
                hit = resp.headers.get("x-thrifty-cache")
    if hit != "hit-exact":
        raise RuntimeError(f"expected an exact cache hit, got x-thrifty-cache={hit!r}")


class Runner:
    """Holds the run's settings so each figure is one short method."""

    def __init__(self, seconds: float, concurrency: int, use_wrk: bool) -> None:
        self.seconds = seconds
        self.concurrency = concurrency
        self.use_wrk = use_wrk

    def load(
        self, url: str, body: bytes, connections: int, core: int, warmup: float = 1.0
    ) -> LoadResult:
        return run_load(
            url,
            body,
            connections=connections,
            seconds=self.seconds,
            auth=AUTH,
            core=core,
            warmup=warmup,
            use_wrk=self.use_wrk,
        )

    def proxied(self, server: Server, url: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """c=1 and c=N through one proxy (generator on the upstream's core), with the
        proxy's CPU time per request at c=N (after a 1 s warm-up outside the count)."""
        c1 = self.load(url, BODY, 1, UPSTREAM_CORE).to_dict()
        run_load(
            url,
            BODY,
            connections=self.concurrency,
            seconds=1,
            auth=AUTH,
            core=UPSTREAM_CORE,
            warmup=0,
            use_wrk=self.use_wrk,
        )  # warm-up
        cpu_before = server.cpu_seconds()
        result = self.load(url, BODY, self.concurrency, UPSTREAM_CORE, warmup=0)
        cpu_used = server.cpu_seconds() - cpu_before
        cn = result.to_dict()
        cn["cpu_us_per_request"] = round(cpu_used / max(result.requests, 1) * 1e6, 1)
        return c1, cn

    def round(self, direct: str, targets: dict[str, tuple[Server, str]]) -> dict[str, Any]:
        """One round: c=1 and c=N direct (generator on the gateway's core), then through
        each proxy in ``targets`` (the gateway, the no-logic floor proxy)."""
        out: dict[str, Any] = {
            "c1_direct": self.load(direct, BODY, 1, GATEWAY_CORE).to_dict(),
            "cN_direct": self.load(direct, BODY, self.concurrency, GATEWAY_CORE).to_dict(),
        }
        for name, (server, url) in targets.items():
            out[f"c1_{name}"], out[f"cN_{name}"] = self.proxied(server, url)
        return out


def summarise(rounds: list[dict[str, Any]], stream: dict[str, list[float]]) -> dict[str, Any]:
    """Medians over rounds (with min-max), added latency and ratios."""

    def med(key: str, field: str) -> float:
        return round(statistics.median(r[key][field] for r in rounds), 3)

    def span(key: str, field: str) -> list[float]:
        values = [r[key][field] for r in rounds]
        return [round(min(values), 3), round(max(values), 3)]

    floor_added = [r["c1_floor"]["p50_ms"] - r["c1_direct"]["p50_ms"] for r in rounds]
    added = [r["c1_gateway"]["p50_ms"] - r["c1_direct"]["p50_ms"] for r in rounds]
    added99 = [r["c1_gateway"]["p99_ms"] - r["c1_direct"]["p99_ms"] for r in rounds]
    ratios = [r["cN_gateway"]["rps"] / r["cN_direct"]["rps"] for r in rounds]
    d_stream, g_stream = stream["direct"], stream["gateway"]
    return {
        "c1": {
            "direct_p50_ms": med("c1_direct", "p50_ms"),
            "gateway_p50_ms": med("c1_gateway", "p50_ms"),
            "added_p50_ms": round(statistics.median(added), 3),
            "added_p50_range_ms": [round(min(added), 3), round(max(added), 3)],
            "direct_p99_ms": med("c1_direct", "p99_ms"),
            "gateway_p99_ms": med("c1_gateway", "p99_ms"),
            "added_p99_ms": round(statistics.median(added99), 3),
            "added_p99_range_ms": [round(min(added99), 3), round(max(added99), 3)],
            "floor_p50_ms": med("c1_floor", "p50_ms"),
            "floor_added_p50_ms": round(statistics.median(floor_added), 3),
            "floor_p99_ms": med("c1_floor", "p99_ms"),
        },
        "throughput": {
            "direct_rps": med("cN_direct", "rps"),
            "gateway_rps": med("cN_gateway", "rps"),
            "gateway_rps_range": span("cN_gateway", "rps"),
            "ratio": round(statistics.median(ratios), 3),
            "gateway_p50_ms": med("cN_gateway", "p50_ms"),
            "gateway_p99_ms": med("cN_gateway", "p99_ms"),
            "gateway_cpu_us_per_request": med("cN_gateway", "cpu_us_per_request"),
            "floor_rps": med("cN_floor", "rps"),
            "floor_cpu_us_per_request": med("cN_floor", "cpu_us_per_request"),
            "errors": sum(r["cN_gateway"]["errors"] + r["cN_direct"]["errors"] for r in rounds),
        },
        "stream_first_chunk": {
            "direct_p50_ms": round(statistics.median(d_stream), 3),
            "gateway_p50_ms": round(statistics.median(g_stream), 3),
            "added_p50_ms": round(statistics.median(g_stream) - statistics.median(d_stream), 3),
            "direct_p99_ms": round(percentile(d_stream, 0.99), 3),
            "gateway_p99_ms": round(percentile(g_stream, 0.99), 3),
            "added_p99_ms": round(percentile(g_stream, 0.99) - percentile(d_stream, 0.99), 3),
        },
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    use_wrk = have_wrk() and not args.no_wrk
    runner = Runner(args.seconds, args.concurrency, use_wrk)
    workdir = Path(tempfile.mkdtemp(prefix="thrifty-bench-"))
    upstream, up_port = start_upstream(workdir, args.upstream_latency_ms)
    direct = f"http://127.0.0.1:{up_port}/v1/chat/completions"
    servers = [upstream]
    try:
        gateway, gateway_url = start_gateway(workdir, "gateway", up_port)
        floor, floor_url = start_floor(workdir, up_port)
        servers += [gateway, floor]
        targets = {"gateway": (gateway, gateway_url), "floor": (floor, floor_url)}
        rounds = []
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds} ...", file=sys.stderr)
            rounds.append(runner.round(direct, targets))
        floor.stop()
        stream = {
            "direct": asyncio.run(first_chunk_latencies(direct, args.stream_requests)),
            "gateway": asyncio.run(first_chunk_latencies(gateway_url, args.stream_requests)),
        }
        rss = gateway.rss_mb()
        gateway.stop()
        print("exact cache hit ...", file=sys.stderr)
        cache = {"enabled": True, "store": "memory", "cache_nondeterministic": True}
        cached, cached_url = start_gateway(workdir, "cache", up_port, cache=cache)
        servers.append(cached)
        asyncio.run(check_cache_hit(cached_url))
        hit = run_load(
            cached_url,
            CACHE_BODY,
            connections=1,
            seconds=args.seconds,
            auth=AUTH,
            core=UPSTREAM_CORE,
            use_wrk=use_wrk,
        )
    finally:
        for server in servers:
            server.stop()
    result = summarise(rounds, stream)
    result["exact_cache_hit"] = {"p50_ms": hit.p50_ms, "p99_ms": hit.p99_ms, "rps": hit.rps}
    result["gateway_rss_mb"] = rss
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at the end",
        "generator": "wrk" if use_wrk else "python",
        "note": None if use_wrk else FALLBACK_NOTE,
        "settings": {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "upstream_latency_ms": args.upstream_latency_ms,
            "stream_requests": args.stream_requests,
        },
        **result,
        "rounds": rounds,
    }


def _ms(value: float) -> str:
    return f"{value:.3f} ms"


def _signed(value: float) -> str:
    return f"{value:+.3f} ms"


def write_report(result: dict[str, Any], stem: Path) -> Path:
    """Write ``stem.json`` and ``stem.md``; return the Markdown path."""
    c1, tp = result["c1"], result["throughput"]
    ttft, hit, s = result["stream_first_chunk"], result["exact_cache_hit"], result["settings"]
    lo, hi = c1["added_p50_range_ms"]
    lines = [
        f"# Pass-through overhead ({result['date']}, {result['machine']})",
        "",
        f"Same run, same test upstream (latency {s['upstream_latency_ms']} ms); gateway "
        f"`thrifty serve` with the ledger on, 1 worker, on core 0; upstream on core 1. "
        f"Load generator: {result['generator']} on the core the target does not use. "
        f"Medians of {s['rounds']} rounds of {s['seconds']} s per figure.",
        "",
    ]
    if result["note"]:
        lines += [f"> {result['note']}", ""]
    lines += [
        "| figure | direct | via gateway | added / ratio |",
        "|---|---|---|---|",
        f"| latency p50, c=1 | {_ms(c1['direct_p50_ms'])} | {_ms(c1['gateway_p50_ms'])} | "
        f"{_signed(c1['added_p50_ms'])} (rounds: {lo:.3f}–{hi:.3f}) |",
        f"| latency p99, c=1 | {_ms(c1['direct_p99_ms'])} | {_ms(c1['gateway_p99_ms'])} | "
        f"{_signed(c1['added_p99_ms'])} |",
        f"| latency p50, c=1, no-logic floor proxy | {_ms(c1['direct_p50_ms'])} | "
        f"{_ms(c1['floor_p50_ms'])} | {_signed(c1['floor_added_p50_ms'])} |",
        f"| requests/s, c={s['concurrency']} | {tp['direct_rps']:,.0f} | "
        f"{tp['gateway_rps']:,.0f} ({tp['gateway_rps_range'][0]:,.0f}–"
        f"{tp['gateway_rps_range'][1]:,.0f}) | ×{tp['ratio']:.2f} |",
        f"| latency p50 / p99, c={s['concurrency']} | — | {_ms(tp['gateway_p50_ms'])} / "
        f"{_ms(tp['gateway_p99_ms'])} | |",
        f"| stream first chunk p50 | {_ms(ttft['direct_p50_ms'])} | "
        f"{_ms(ttft['gateway_p50_ms'])} | {_signed(ttft['added_p50_ms'])} |",
        f"| stream first chunk p99 | {_ms(ttft['direct_p99_ms'])} | "
        f"{_ms(ttft['gateway_p99_ms'])} | {_signed(ttft['added_p99_ms'])} |",
        "",
        f"- Gateway CPU per request at c={s['concurrency']}: "
        f"{tp['gateway_cpu_us_per_request']:.0f} µs (all threads, ledger writer included); "
        f"1 core / that = {1e6 / tp['gateway_cpu_us_per_request']:,.0f} requests/s if the "
        "gateway had its core to itself.",
        f"- The no-logic floor proxy (`bench/floor_proxy.py`: the same uvicorn + aiohttp "
        f"stack, no auth, pipeline or ledger): {tp['floor_rps']:,.0f} requests/s at "
        f"c={s['concurrency']}, {tp['floor_cpu_us_per_request']:.0f} µs CPU per request; "
        f"the gateway's own work is the gap: "
        f"{tp['gateway_cpu_us_per_request'] - tp['floor_cpu_us_per_request']:.0f} µs CPU "
        "per request.",
        f"- Exact cache hit end to end (c=1, in-memory store, the upstream is not called): "
        f"p50 {_ms(hit['p50_ms'])}, p99 {_ms(hit['p99_ms'])} "
        f"(a direct upstream call: p50 {_ms(c1['direct_p50_ms'])}).",
        f"- Gateway RSS after the load: {result['gateway_rss_mb']} MB.",
        f"- Errors (non-2xx, socket errors, timeouts) under load: {tp['errors']}.",
        "",
    ]
    return write_results(stem, result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per figure per round")
    parser.add_argument("--concurrency", type=int, default=32, help="for requests/s")
    parser.add_argument("--stream-requests", type=int, default=500)
    parser.add_argument("--upstream-latency-ms", type=float, default=0.0)
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument("--out", type=Path, help="report stem (default results/<date>)")
    args = parser.parse_args()
    result = run(args)
    report = write_report(result, args.out or result_stem(""))
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
