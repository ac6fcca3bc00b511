"""What a virtual-key lookup costs per request: the PostgreSQL key store vs the SQLite one.

Both stores hold the same number of keys; each round times ``find`` (what the gateway
calls once per request presenting a virtual key) for every key in a shuffled order, on
SQLite then PostgreSQL, interleaved over several rounds, in the same run. The SQLite
store answers repeat lookups from its cache (checked against ``PRAGMA data_version``);
the PostgreSQL store reads the row every time (one round trip), which is what makes a
revoke effective at once on every replica. PostgreSQL is started here, as the tests do.

    python -m bench.key_store [--keys 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.shared_servers import PostgresServer, pg_bin

from bench.reporting import result_stem, write_results
from thrifty.governance.keys.base import KeyStore
from thrifty.governance.keys.postgres import PostgresKeyStore
from thrifty.governance.keys.spec import KeySpec
from thrifty.governance.keys.sqlite import SqliteKeyStore


def fill(store: KeyStore, n: int) -> list[bytes]:
    digests = []
    for i in range(n):
        _, secret = store.create(KeySpec(owner=f"user-{i}", team=f"team-{i % 7}"))
        digests.append(hashlib.sha256(secret.encode()).digest())
    return digests


def per_lookup_us(store: KeyStore, digests: list[bytes]) -> float:
    order = random.sample(digests, len(digests))
    start = time.perf_counter()
    for digest in order:
        if store.find(digest) is None:
            raise AssertionError("a stored key was not found")
    return (time.perf_counter() - start) / len(order) * 1e6


def run(keys: int, rounds: int) -> dict[str, Any]:
    server = PostgresServer(Path(str(pg_bin("initdb"))).parent).start()
    sqlite = SqliteKeyStore(Path(tempfile.mkdtemp(prefix="thrifty-bench-keys-")) / "keys.db")
    postgres = PostgresKeyStore(server.new_database())
    try:
        stores: dict[str, tuple[KeyStore, list[bytes]]] = {
            "sqlite": (sqlite, fill(sqlite, keys)),
            "postgres": (postgres, fill(postgres, keys)),
        }
        times: dict[str, list[float]] = {name: [] for name in stores}
        for _ in range(rounds):
            for name, (store, digests) in stores.items():
                times[name].append(per_lookup_us(store, digests))
    finally:
        sqlite.close()
        postgres.close()
        server.stop()
    medians = {name: round(statistics.median(t), 1) for name, t in times.items()}
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "keys": keys,
        "rounds": rounds,
        "lookup_us_median": medians,
        "lookup_us_rounds": {name: [round(x, 1) for x in t] for name, t in times.items()},
        "postgres_over_sqlite": round(medians["postgres"] / medians["sqlite"], 1),
    }


def write_report(result: dict[str, Any]) -> Path:
    stem = result_stem("key-store")
    m = result["lookup_us_median"]
    lines = [
        f"# Virtual-key lookup per request ({result['date']})",
        "",
        f"`find` over {result['keys']:,} keys in shuffled order, median of {result['rounds']} "
        "interleaved rounds, same run; PostgreSQL on this machine (loopback).",
        "",
        "| store | µs per lookup | vs SQLite |",
        "|---|---|---|",
        f"| SQLite (cached, `data_version` check) | {m['sqlite']} | 1.0 |",
        f"| PostgreSQL (one indexed read) | {m['postgres']} | {result['postgres_over_sqlite']} |",
        "",
    ]
    return write_results(stem, result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report = write_report(run(args.keys, args.rounds))
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
