"""How long the dashboard's ledger reads take on a large ledger, against ``thrifty report``
(one ``build_report`` by model) over the same rows in the same run.

Builds a ledger of ``--rows`` requests spread evenly (in time order, as a gateway writes
them) over 30 days, 50 keys, 7 teams, with cascades, cache misses and attempts, then
times one dashboard load per range (CPU of this process and wall time; SQLite runs in
this process, so CPU is the work done, wall adds what other load on the machine costs).

With ``--postgres`` the same rows also go into a PostgreSQL ledger (a server started here,
as the tests do) and each load is timed there too, in the same run; PostgreSQL does its
work in its own processes, so compare wall times.

    python -m bench.dashboard_queries [--rows 200000] [--postgres]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.metrics_overhead import sample_records
from bench.reporting import result_stem, write_results
from thrifty.dashboard.ledger_sql import ledger_sql
from thrifty.dashboard.queries import RANGES, load_dashboard
from thrifty.ledger.reports import build_report
from thrifty.ledger.stores.base import LedgerStore
from thrifty.ledger.stores.sqlite import SqliteLedgerStore

SPAN = 30 * 86_400


def build_ledger(store: LedgerStore, rows: int, now: float) -> LedgerStore:
    records = sample_records(rows)
    for i, record in enumerate(records):
        record.ts = now - SPAN + i * SPAN / rows
        record.key_id = f"key-{i % 50}"
        record.tags = {"team": f"team-{i % 7}", "env": "prod"}
        for attempt in record.attempts:
            attempt.ts = record.ts
    for start in range(0, rows, 5_000):
        store.write_many(records[start : start + 5_000])
    return store


def timed(fn: Callable[[], Any], repeats: int = 3) -> dict[str, float]:
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return {"cpu_s": round(statistics.median(cpu), 3), "wall_s": round(statistics.median(wall), 3)}


def run(rows: int, postgres: bool = False) -> dict[str, Any]:
    now = time.time()
    path = Path(tempfile.mkdtemp(prefix="thrifty-bench-dash-")) / "l.db"
    store = build_ledger(SqliteLedgerStore(path), rows, now)
    server, pg = None, None
    if postgres:
        from tests.shared_servers import PostgresServer, pg_bin

        from thrifty.ledger.stores.postgres import PostgresLedgerStore

        server = PostgresServer(Path(str(pg_bin("initdb"))).parent).start()
        pg = build_ledger(PostgresLedgerStore(server.new_database()), rows, now)
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": rows,
        "ranges": {},
    }
    sql = ledger_sql(store)
    pg_sql = ledger_sql(pg) if pg is not None else None
    try:
        for name, span in RANGES.items():
            since = None if span.seconds is None else now - span.seconds
            dashboard = timed(lambda n=name: load_dashboard(store, sql, n, now=now))
            report = timed(lambda s=since: build_report(store, s, by="model"))
            in_range = len(store.query_requests(since)) if name != "all" else rows
            out["ranges"][name] = {
                "requests": in_range,
                "dashboard": dashboard,
                "report_by_model": report,
                "cpu_ratio": round(dashboard["cpu_s"] / max(report["cpu_s"], 1e-6), 2),
            }
            if pg is not None:
                on_pg = timed(lambda n=name: load_dashboard(pg, pg_sql, n, now=now))
                out["ranges"][name]["dashboard_postgres"] = on_pg
                out["ranges"][name]["postgres_wall_ratio"] = round(
                    on_pg["wall_s"] / max(dashboard["wall_s"], 1e-6), 2
                )
    finally:
        store.close()
        if pg is not None:
            pg.close()
        if server is not None:
            server.stop()
    return out


def write_report(result: dict[str, Any]) -> Path:
    stem = result_stem("dashboard-queries")
    lines = [
        f"# Dashboard ledger reads ({result['date']}, {result['rows']:,} requests over 30 days)",
        "",
        "One dashboard load per range (all its queries) vs one `thrifty report --by model` over "
        "the same rows, same run; medians of 3. CPU is this process's (SQLite runs in it).",
        "",
        "| range | requests | dashboard CPU | dashboard wall | report CPU | dashboard / report |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in result["ranges"].items():
        lines.append(
            f"| {name} | {r['requests']:,} | {r['dashboard']['cpu_s']} s | "
            f"{r['dashboard']['wall_s']} s | {r['report_by_model']['cpu_s']} s | {r['cpu_ratio']} |"
        )
    lines.append("")
    if any("dashboard_postgres" in r for r in result["ranges"].values()):
        lines += [
            "The same rows in a PostgreSQL ledger (server on this machine, same run): one "
            "dashboard load's wall time, against the SQLite one above.",
            "",
            "| range | SQLite wall | PostgreSQL wall | PostgreSQL / SQLite |",
            "|---|---|---|---|",
        ]
        for name, r in result["ranges"].items():
            lines.append(
                f"| {name} | {r['dashboard']['wall_s']} s | {r['dashboard_postgres']['wall_s']} s"
                f" | {r['postgres_wall_ratio']} |"
            )
        lines.append("")
    return write_results(stem, result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--postgres", action="store_true", help="also time a PostgreSQL ledger")
    args = parser.parse_args()
    report = write_report(run(args.rows, args.postgres))
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
