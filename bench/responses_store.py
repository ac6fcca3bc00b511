"""What storing and reading a Responses API conversation costs on each store, full.

Each store is first filled to its entry bound (``--entries`` conversations of
``--turns`` turns), so every timed ``put`` also expires and trims (SQLite/PostgreSQL) as in
a long-running gateway; then rounds interleave the stores, each timing ``--ops`` puts of
new conversations and as many gets of stored ones, in shuffled order. These are the calls
a ``/v1/responses`` request makes (one put; one get with ``previous_response_id``), on the
request's worker thread. Redis and PostgreSQL are started here, on loopback, as the tests
start them.

    python -m bench.responses_store [--entries 10000] [--turns 6] [--ops 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from tests.shared_servers import PostgresServer, RedisServer, pg_bin

from bench.reporting import result_stem, write_results
from thrifty.server.responses_redis import RedisResponseStore
from thrifty.server.responses_sql import PostgresResponseStore, SqliteResponseStore
from thrifty.server.responses_store import MemoryResponseStore, ResponseStore
from thrifty.stores.config import RedisConfig
from thrifty.stores.redis import RedisLink


def conversation(turns: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    words = [f"w{rng.randrange(5000)}" for _ in range(turns * 60)]
    messages = []
    for turn in range(turns):
        chunk = " ".join(words[turn * 60 : turn * 60 + 60])
        messages += [{"role": "user", "content": chunk}, {"role": "assistant", "content": chunk}]
    return messages


def time_round(store: ResponseStore, ids: list[str], body: list[dict[str, Any]], ops: int,
               start: int) -> tuple[float, float]:  # fmt: skip
    """µs per put (new ids from ``start``) and per get (stored ids), this round."""
    began = time.perf_counter()
    for i in range(start, start + ops):
        store.put("tenant", f"resp_{i}", body)
    put_us = (time.perf_counter() - began) / ops * 1e6
    wanted = random.sample(ids[-ops * 4 :], ops)  # recent: not yet trimmed
    began = time.perf_counter()
    for response_id in wanted:
        if store.get("tenant", response_id) is None:
            raise AssertionError(f"{response_id} was not found")
    return put_us, (time.perf_counter() - began) / ops * 1e6


def run(entries: int, turns: int, ops: int, rounds: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="thrifty-bench-responses-"))
    redis = RedisServer(str(shutil.which("redis-server")), workdir).start()
    postgres = PostgresServer(Path(str(pg_bin("initdb"))).parent).start()
    body = conversation(turns, 0)
    stores: dict[str, ResponseStore] = {
        "memory": MemoryResponseStore(max_entries=entries),
        "sqlite": SqliteResponseStore(workdir / "responses.db", max_entries=entries),
        "redis": RedisResponseStore(RedisLink(RedisConfig(url=redis.url, prefix="bench:"))),
        "postgres": PostgresResponseStore(postgres.new_database(), max_entries=entries),
    }
    times: dict[str, dict[str, list[float]]] = {n: {"put": [], "get": []} for n in stores}
    try:
        for store in stores.values():
            for i in range(entries):
                store.put("tenant", f"resp_{i}", body)
        next_id = entries
        for _ in range(rounds):
            ids = [f"resp_{i}" for i in range(next_id)]
            for name, store in stores.items():
                put_us, get_us = time_round(store, ids, body, ops, next_id)
                times[name]["put"].append(put_us)
                times[name]["get"].append(get_us)
            next_id += ops
    finally:
        for store in stores.values():
            store.close()
        redis.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "entries": entries, "turns": turns, "ops": ops, "rounds": rounds,
        "conversation_bytes": len(orjson.dumps(body)),
        "us_median": {
            name: {op: round(statistics.median(t), 1) for op, t in ops_times.items()}
            for name, ops_times in times.items()
        },
        "us_rounds": {
            name: {op: [round(x, 1) for x in t] for op, t in ops_times.items()}
            for name, ops_times in times.items()
        },
    }  # fmt: skip


def write_report(result: dict[str, Any]) -> Path:
    stem = result_stem("responses-store")
    m = result["us_median"]
    lines = [
        f"# Stored responses: a put and a get per store ({result['date']})",
        "",
        f"Each store full at {result['entries']:,} conversations of {result['turns']} turns "
        f"({result['conversation_bytes']:,} bytes of JSON each); median of "
        f"{result['rounds']} interleaved rounds of {result['ops']} puts (each expiring and "
        "trimming in SQLite/PostgreSQL) and as many gets; Redis and PostgreSQL on this "
        "machine (loopback). `python -m bench.responses_store`.",
        "",
        "| store | µs per put | µs per get |",
        "|---|---|---|",
        *(f"| {name} | {t['put']} | {t['get']} |" for name, t in m.items()),
        "",
    ]
    return write_results(stem, result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report = write_report(run(args.entries, args.turns, args.ops, args.rounds))
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
