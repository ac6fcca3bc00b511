"""How long the dashboard's ledger reads take on a large ledger, against ``thrifty report``
(one ``build_report`` by model) over the same rows in the same run.

Builds a ledger of ``--rows`` requests spread evenly (in time order, as a gateway writes
them) over 30 days, 50 keys, 7 teams, with cascades, cache misses and attempts, then
times one dashboard load per range (CPU of this process and wall time; SQLite runs in
this process, so CPU is the work done, wall adds what other load on the machine costs).

    python -m bench.dashboard_queries [--rows 200000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.metrics_overhead import sample_records
from thrifty.dashboard.queries import RANGES, load_dashboard
from thrifty.ledger.reports import build_report
from thrifty.ledger.stores.sqlite import SqliteLedgerStore

RESULTS = Path(__file__).parent / "results"
SPAN = 30 * 86_400


def build_ledger(path: Path, rows: int, now: float) -> SqliteLedgerStore:
    store = SqliteLedgerStore(path)
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


def run(rows: int) -> dict[str, Any]:
    now = time.time()
    store = build_ledger(Path(tempfile.mkdtemp(prefix="thrifty-bench-dash-")) / "l.db", rows, now)
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": rows,
        "ranges": {},
    }
    try:
        for name, span in RANGES.items():
            since = None if span.seconds is None else now - span.seconds
            dashboard = timed(lambda n=name: load_dashboard(store, store.path, n, now=now))
            report = timed(lambda s=since: build_report(store, s, by="model"))
            in_range = len(store.query_requests(since)) if name != "all" else rows
            out["ranges"][name] = {
                "requests": in_range,
                "dashboard": dashboard,
                "report_by_model": report,
                "cpu_ratio": round(dashboard["cpu_s"] / max(report["cpu_s"], 1e-6), 2),
            }
    finally:
        store.close()
    return out


def write_report(result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{dt.date.today().isoformat()}-dashboard-queries"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
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
    stem.with_suffix(".md").write_text("\n".join(lines))
    return stem.with_suffix(".md")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    report = write_report(run(args.rows))
    sys.stdout.write(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
