"""What the dashboard shows, read from the ledger store: never from in-memory state.

Sums by model, key and tag, totals and technique savings come through the
:class:`~thrifty.ledger.stores.base.LedgerStore` interface, the same calls as
``thrifty report``, so both always agree. The few views that interface has no call for
(spend over time, team, cache and cascade decision rates) are SQL over a read-only
connection to the same SQLite file; WAL lets them run while the writer commits.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from thrifty.ledger.reports import build_report
from thrifty.ledger.stores.base import LedgerStore

LATEST_LIMIT = 50


@dataclass(frozen=True, slots=True)
class TimeRange:
    name: str
    seconds: int | None  # None: everything in the ledger
    bucket_s: int  # width of one point of the time series


RANGES = {
    r.name: r
    for r in (
        TimeRange("24h", 86_400, 3_600),
        TimeRange("7d", 7 * 86_400, 86_400),
        TimeRange("30d", 30 * 86_400, 86_400),
        TimeRange("all", None, 86_400),
    )
}
DEFAULT_RANGE = "7d"


def load_dashboard(
    store: LedgerStore, path: Path, range_name: str, now: float | None = None
) -> dict[str, Any]:
    """Everything one dashboard page shows, JSON-ready. Blocking: run it in a thread."""
    now = time.time() if now is None else now
    span = RANGES[range_name]
    since = None if span.seconds is None else now - span.seconds
    by_model = build_report(store, since, by="model")
    totals = by_model["totals"]
    with _connect(path) as conn:
        series = _series(conn, since, span.bucket_s, now)
        by_team = _by_team(conn, since)
        decisions = _decisions(conn, since)
    return {
        "range": span.name,
        "since": since,
        "now": now,
        "totals": totals,
        "series": series,
        "waterfall": _waterfall(totals, by_model["by_technique"]),
        "by_model": by_model["groups"],
        "by_key": _groups(store, "key", since),
        "by_team": by_team,
        "by_tag": _groups(store, "tag", since),
        "decisions": decisions,
        "warnings": by_model["warnings"],
        "latest": store.query_requests(since, limit=LATEST_LIMIT),
    }


def _groups(store: LedgerStore, by: str, since: float | None) -> list[dict[str, Any]]:
    """Per-group sums, costliest first; what ``build_report`` returns as ``groups``,
    without the totals it would query again for each grouping."""
    rows = store.aggregate(by, since)
    return sorted(
        (
            {
                "key": row["key"],
                "requests": int(row["requests"]),
                "cost": float(row["cost"]),
                "savings": float(row["savings"]) if row["baseline_requests"] else None,
                "unpriced": int(row["unpriced"]),
            }
            for row in rows
        ),
        key=lambda g: (-g["cost"], str(g["key"])),
    )


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    conn.row_factory = sqlite3.Row
    return conn


def _where(since: float | None, extra: str = "") -> tuple[str, list[Any]]:
    clauses = [c for c in ("ts >= ?" if since is not None else "", extra) if c]
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), (
        [since] if since is not None else []
    )


def _series(
    conn: sqlite3.Connection, since: float | None, bucket_s: int, now: float
) -> dict[str, list[Any]]:
    """Cost, baseline and savings per time bucket; empty buckets are zeros, not gaps."""
    where, params = _where(since)
    rows = conn.execute(
        f"SELECT CAST(ts / ? AS INTEGER) AS b, COUNT(*) AS n, TOTAL(cost) AS cost, "
        f"TOTAL(baseline_cost) AS baseline, TOTAL(baseline_cost - cost) AS savings "
        f"FROM requests {where} GROUP BY 1 ORDER BY 1",
        [bucket_s, *params],
    ).fetchall()
    by_bucket = {row["b"]: row for row in rows}
    last = int(now // bucket_s)
    first = int(since // bucket_s) if since is not None else (rows[0]["b"] if rows else last)
    out: dict[str, list[Any]] = {"labels": [], "requests": [], "cost": [], "baseline": [],
                                 "savings": []}  # fmt: skip
    fmt = "%m-%d %H:00" if bucket_s < 86_400 else "%Y-%m-%d"
    for b in range(first, last + 1):
        row = by_bucket.get(b)
        out["labels"].append(datetime.fromtimestamp(b * bucket_s, UTC).strftime(fmt))
        out["requests"].append(row["n"] if row else 0)
        out["cost"].append(row["cost"] if row else 0.0)
        out["baseline"].append(row["baseline"] if row else 0.0)
        out["savings"].append(row["savings"] if row else 0.0)
    return out


def _waterfall(totals: dict[str, Any], by_technique: dict[str, float]) -> list[dict[str, Any]]:
    """Baseline, minus each technique's net savings, to the actual cost.

    Over the requests with a known baseline (failed and unpriced requests have none). What
    the techniques booked need not add up to baseline minus actual (e.g. a fallback to a
    cheaper model saves without any technique): the rest is its own "other" step.
    """
    baseline, savings = totals["baseline_cost"], totals["savings"]
    if baseline is None or savings is None:
        return []
    steps = [{"label": "baseline", "kind": "total", "value": baseline}]
    booked = 0.0
    for name, saved in sorted(by_technique.items(), key=lambda kv: -kv[1]):
        steps.append({"label": name, "kind": "step", "value": -saved})
        booked += saved
    other = savings - booked
    if abs(other) > 1e-12:
        steps.append({"label": "other", "kind": "step", "value": -other})
    steps.append({"label": "actual", "kind": "total", "value": baseline - savings})
    return steps


def _team_source(conn: sqlite3.Connection) -> tuple[str, str]:
    """A ``team`` column when the ledger has one (virtual keys), else the ``team`` tag."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(requests)")}
    if "team" in columns:
        return "COALESCE(r.team, '(no team)')", "requests r"
    return (
        "COALESCE(t.value, '(no team)')",
        "requests r LEFT JOIN request_tags t ON t.request_id = r.request_id AND t.key = 'team'",
    )


def _by_team(conn: sqlite3.Connection, since: float | None) -> list[dict[str, Any]]:
    key, source = _team_source(conn)
    where = "WHERE r.ts >= ?" if since is not None else ""
    rows = conn.execute(
        f"SELECT {key} AS key, COUNT(*) AS requests, SUM(r.status = 'error') AS errors, "
        f"TOTAL(r.cost) AS cost, TOTAL(r.baseline_cost - r.cost) AS savings, "
        f"SUM(r.unpriced) AS unpriced FROM {source} {where} GROUP BY 1 ORDER BY cost DESC, 1",
        [since] if since is not None else [],
    ).fetchall()
    return [dict(row) for row in rows]


def _decisions(conn: sqlite3.Connection, since: float | None) -> dict[str, Any]:
    """Cache hit rate (hits over lookups) and cascade escalation rate."""
    where, params = _where(since)
    row = conn.execute(
        "SELECT "
        "SUM(json_extract(techniques, '$.cache.result') = 'hit') AS cache_hits, "
        "SUM(json_extract(techniques, '$.cache.result') = 'miss') AS cache_misses, "
        "SUM(json_extract(techniques, '$.cache.result') = 'bypass') AS cache_bypassed, "
        "SUM(json_extract(techniques, '$.cascade') IS NOT NULL) AS cascaded, "
        "SUM(json_extract(techniques, '$.cascade.accepted') "
        "    != json_extract(techniques, '$.cascade.start')) AS escalated, "
        "SUM(json_extract(techniques, '$.route') IS NOT NULL) AS routed "
        f"FROM requests {where}",
        params,
    ).fetchone()
    counts = {name: int(row[name] or 0) for name in row.keys()}  # noqa: SIM118 (sqlite3.Row)
    lookups = counts["cache_hits"] + counts["cache_misses"]
    counts["cache_hit_rate"] = counts["cache_hits"] / lookups if lookups else None
    cascaded = counts["cascaded"]
    counts["escalation_rate"] = counts["escalated"] / cascaded if cascaded else None
    return counts
