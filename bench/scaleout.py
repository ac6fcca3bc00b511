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

    python -m bench.scaleout [--seconds 4] [--requests 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
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
from tests.shared_servers import PostgresServer, RedisServer, pg_bin

from bench.reporting import result_stem, write_results
from thrifty.cli.processes import free_port, wait_healthy

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


def start_replicas(
    workdir: Path, name: str, up_port: int, stores: dict, replicas: int
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    ports = [free_port() for _ in range(replicas)]
    configs = [write_config(workdir, f"{name}{i}", p, up_port, stores) for i, p in enumerate(ports)]
    processes = [
        spawn(["serve", "--config", str(c)], p) for c, p in zip(configs, ports, strict=True)
    ]
    return processes, [f"http://127.0.0.1:{p}/v1/chat/completions" for p in ports]


def measure(urls: list[str], args: Any) -> dict[str, float]:
    miss = asyncio.run(latencies(urls, args.requests, hit=False))
    hit = asyncio.run(latencies(urls, args.requests, hit=True))
    rps = asyncio.run(throughput(urls, 32, args.seconds))
    return {
        "miss_p50_ms": statistics.median(miss),
        "miss_p99_ms": percentile(miss, 0.99),
        "hit_p50_ms": statistics.median(hit),
        "hit_p99_ms": percentile(hit, 0.99),
        "rps_c32": rps,
    }


def configurations(workdir: Path, redis: RedisServer, postgres: PostgresServer) -> list[tuple]:
    def sqlite(tag: str) -> dict:
        return {
            "cache": {"enabled": True, "store": "sqlite", "path": str(workdir / f"cache{tag}.db")},
            "ledger": {"path": str(workdir / f"ledger{tag}.db")},
        }

    def shared(tag: str) -> dict:  # a fresh database and key prefix per configuration
        return {
            "cache": {"enabled": True, "store": "redis"},
            "redis": {"url": redis.url, "prefix": f"{tag}:"},
            "ledger": {"store": "postgres", "dsn": postgres.new_database()},
        }

    return [
        ("sqlite", sqlite("1"), 1),
        ("shared", shared("s1"), 1),
        ("shared x2", shared("s2"), 2),
        ("sqlite x2", sqlite("2"), 2),
    ]


def _op_us(op: Any, n: int) -> float:
    """Median microseconds of ``op()`` over ``n`` calls (after 50 warm-up calls)."""
    for _ in range(50):
        op()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        op()
        times.append((time.perf_counter() - start) * 1e6)
    return round(statistics.median(times), 1)


def store_ops(workdir: Path, redis: RedisServer, postgres: PostgresServer, n: int) -> dict:
    """What each store costs per operation: the same calls on both, one after the other."""
    from tests.test_ledger import make_record

    from thrifty.cache.stores.redis import RedisCacheStore
    from thrifty.cache.stores.sqlite import SqliteCacheStore
    from thrifty.governance.budgets.base import BudgetBucket
    from thrifty.governance.budgets.redis import RedisBudgetStore
    from thrifty.ledger.stores.postgres import PostgresLedgerStore
    from thrifty.ledger.stores.sqlite import SqliteLedgerStore
    from thrifty.stores.config import RedisConfig
    from thrifty.stores.redis import RedisLink

    value = bytes(1200)  # about one stored chat completion
    caches = {
        "sqlite": SqliteCacheStore(workdir / "ops-cache.db", 100_000),
        "redis": RedisCacheStore(RedisLink(RedisConfig(url=redis.url, prefix="ops:")), 100_000),
    }
    ledgers = {
        "sqlite": SqliteLedgerStore(workdir / "ops-ledger.db"),
        "postgres": PostgresLedgerStore(postgres.new_database()),
    }
    out: dict[str, dict[str, float]] = {}
    keys = itertools.count()
    for name, cache in caches.items():
        cache.set("hot", value, ttl_s=3600, scope="s")
        out[f"cache {name}"] = {
            "get_hit_us": _op_us(lambda c=cache: c.get("hot"), n),
            "get_miss_us": _op_us(lambda c=cache: c.get("absent"), n),
            "set_us": _op_us(
                lambda c=cache: c.set(f"k{next(keys)}", value, ttl_s=3600, scope="s"), n
            ),
        }
        cache.close()
    batch, calls = 50, max(20, n // 50)  # rows per transaction, as the writer batches them
    for name, ledger in ledgers.items():
        batches = iter(
            [[make_record(f"r{b}-{i}") for i in range(batch)] for b in range(calls + 50)]
        )  # built before timing: only the store's work is measured
        per_batch = _op_us(lambda s=ledger, it=batches: s.write_many(next(it)), calls)
        out[f"ledger {name}"] = {"write_per_row_us": round(per_batch / batch, 1)}
        ledger.close()

    async def budgets() -> float:
        store = RedisBudgetStore(RedisLink(RedisConfig(url=redis.url, prefix="ops:")))
        buckets = (
            BudgetBucket("key:k", "day", "2026-11-28", 1e9, time.time() + 3600),
            BudgetBucket("team:t", "month", "2026-11", 1e9, time.time() + 86_400),
        )
        times = []
        for i in range(n + 50):
            start = time.perf_counter()
            hold = await store.reserve(buckets, 0.01, ttl_s=600)
            await store.settle(hold, 0.005)
            if i >= 50:
                times.append((time.perf_counter() - start) * 1e6)
        await store.aclose()
        return round(statistics.median(times), 1)

    out["budgets redis"] = {"reserve_and_settle_us": asyncio.run(budgets())}
    return out


def run(args: Any) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="thrifty-scaleout-"))
    redis_binary, initdb = shutil.which("redis-server"), pg_bin("initdb")
    if redis_binary is None or initdb is None:
        raise SystemExit("install: apt-get install redis-server postgresql")
    redis = RedisServer(redis_binary, workdir).start()
    postgres = PostgresServer(Path(initdb).parent).start()
    up_port = free_port()
    processes = [spawn(["upstream", "--port", str(up_port)], up_port)]
    rounds: dict[str, list[dict[str, float]]] = {}
    replicas: dict[str, int] = {}
    try:
        targets = []
        for name, stores, count in configurations(workdir, redis, postgres):
            started, urls = start_replicas(workdir, name.replace(" ", ""), up_port, stores, count)
            processes += started
            targets.append((name, urls))
            replicas[name] = count
        # Interleaved rounds: other work on the machine hits every configuration alike.
        for _ in range(args.rounds):
            for name, urls in targets:
                rounds.setdefault(name, []).append(measure(urls, args))
        ops = store_ops(workdir, redis, postgres, args.ops)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        redis.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    results = {
        name: {
            "replicas": replicas[name],
            **{k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]},
            "rounds": [{k: round(v, 3) for k, v in r.items()} for r in runs],
        }
        for name, runs in rounds.items()
    }
    base, shared = results["sqlite"], results["shared"]
    sq, rd = ops["cache sqlite"], ops["cache redis"]
    per_request = {  # what the request path itself spends in the cache store
        "miss_sqlite_us": round(sq["get_miss_us"] + sq["set_us"], 1),
        "miss_redis_us": round(rd["get_miss_us"] + rd["set_us"], 1),
        "hit_sqlite_us": sq["get_hit_us"],
        "hit_redis_us": rd["get_hit_us"],
    }
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cpus, shared with other work",
        "rounds": args.rounds,
        "configs": results,
        "store_ops": ops,
        "store_per_request": per_request,
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
    stem = result_stem("scaleout")
    r, p = result["ratios"], result["store_per_request"]
    lines = [
        f"# Scale-out: shared stores and replicas ({result['date']}, {result['machine']})",
        "",
        "Same run, same test upstream, gateways as `thrifty serve` processes (1 worker each,",
        "unpinned, all started before measuring), Redis 7 and PostgreSQL 15 as local",
        "processes. Miss = unique prompt (cache lookup + cache write + ledger row); hit = the",
        "same request (exact hit + ledger row).",
        "",
        "| config | replicas | miss p50 / p99 (c=1) | hit p50 / p99 (c=1) | req/s (c=32, misses) |",
        "|---|---|---|---|---|",
    ]
    for name, c in result["configs"].items():
        lines.append(
            f"| {name} | {c['replicas']} | {c['miss_p50_ms']} / {c['miss_p99_ms']} ms | "
            f"{c['hit_p50_ms']} / {c['hit_p99_ms']} ms | {round(c['rps_c32'])} |"
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
        "Per operation, the stores alone (median µs, same calls on both, same run; the",
        "cache value is 1.2 KB; ledger rows are written in batches of 50 as the writer does):",
        "",
        "| store | operation | µs |",
        "|---|---|---|",
        *[
            f"| {store} | {op.removesuffix('_us').replace('_', ' ')} | {us} |"
            for store, figures in result["store_ops"].items()
            for op, us in figures.items()
        ],
        "",
        "On the request path that is, per request: a miss (lookup + store) "
        f"{p['miss_sqlite_us']} µs on SQLite vs {p['miss_redis_us']} µs on Redis "
        f"(+{round(p['miss_redis_us'] - p['miss_sqlite_us'], 1)} µs); a hit "
        f"{p['hit_sqlite_us']} vs {p['hit_redis_us']} µs "
        f"(+{round(p['hit_redis_us'] - p['hit_sqlite_us'], 1)} µs). Ledger rows are written",
        "by a background thread in both cases, off the request path.",
        "",
        f"Medians of {result['rounds']} interleaved rounds (each round measures every",
        "configuration in turn; per-round values are in the JSON). All processes share this",
        "machine's 2 cores with the load generator and other work, so figures move between",
        "rounds: compare within this report only. On separate machines each replica brings",
        "its own cores, and Redis/PostgreSQL their own.",
        "",
    ]
    return write_results(stem, result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", type=int, default=2000, help="calls per store operation")
    args = parser.parse_args()
    report = write_report(run(args))
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
