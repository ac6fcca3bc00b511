"""What the dashboard shows, read from the ledger store: never from in-memory state.

Sums by model, key, team and tag, totals and technique savings come through the
:class:`~thrifty.ledger.stores.base.LedgerStore` interface, the same calls as
``thrifty report``, so both always agree. The two views that interface has no call for
(spend over time, cache and cascade decision rates) are SQL written once here and run
through :mod:`thrifty.dashboard.ledger_sql` on SQLite or PostgreSQL alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from thrifty.dashboard.ledger_sql import LedgerSql
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
    store: LedgerStore, sql: LedgerSql, range_name: str, now: float | None = None
) -> dict[str, Any]:
    """Everything one dashboard page shows, JSON-ready. Blocking: run it in a thread."""
    now = time.time() if now is None else now
    span = RANGES[range_name]
    since = None if span.seconds is None else now - span.seconds
    by_model = build_report(store, since, by="model")
    totals = by_model["totals"]
    series = _series(sql, since, span.bucket_s, now)
    decisions = _decisions(sql, since)
    return {
        "range": span.name,
        "since": since,
        "now": now,
        "totals": totals,
        "series": series,
        "waterfall": _waterfall(totals, by_model["by_technique"]),
        "by_model": by_model["groups"],
        "by_key": _groups(store, "key", since),
        "by_team": _groups(store, "team", since),
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


def _where(sql: LedgerSql, since: float | None) -> tuple[str, list[Any]]:
    if since is None:
        return "", []
    return f"WHERE ts >= {sql.param}", [since]


def _series(sql: LedgerSql, since: float | None, bucket_s: int, now: float) -> dict[str, list[Any]]:
    """Cost, baseline and savings per time bucket; empty buckets are zeros, not gaps.

    The report's rule: a request with no known baseline counts at its cost (no saving),
    so each bucket's savings are its baseline minus its cost."""
    where, params = _where(sql, since)
    rows = sql.rows(
        f"SELECT {sql.bucket('ts')} AS b, COUNT(*) AS n, COALESCE(SUM(cost), 0) AS cost, "
        "COALESCE(SUM(COALESCE(baseline_cost, cost)), 0) AS baseline, "
        "COALESCE(SUM(baseline_cost - cost), 0) AS savings "
        f"FROM requests {where} GROUP BY 1 ORDER BY 1",
        [bucket_s, *params],
    )
    by_bucket = {int(row["b"]): row for row in rows}
    last = int(now // bucket_s)
    first = int(since // bucket_s) if since is not None else (int(rows[0]["b"]) if rows else last)
    out: dict[str, list[Any]] = {"labels": [], "requests": [], "cost": [], "baseline": [],
                                 "savings": []}  # fmt: skip
    fmt = "%m-%d %H:00" if bucket_s < 86_400 else "%Y-%m-%d"
    for b in range(first, last + 1):
        row = by_bucket.get(b)
        out["labels"].append(datetime.fromtimestamp(b * bucket_s, UTC).strftime(fmt))
        out["requests"].append(int(row["n"]) if row else 0)
        out["cost"].append(float(row["cost"]) if row else 0.0)
        out["baseline"].append(float(row["baseline"]) if row else 0.0)
        out["savings"].append(float(row["savings"]) if row else 0.0)
    return out


def _waterfall(totals: dict[str, Any], by_technique: dict[str, float]) -> list[dict[str, Any]]:
    """Baseline, minus each cause's net savings, to the actual cost.

    The ledger books every dollar of each row's baseline − cost to a named cause
    (``pipeline/attribution.py``), and a row without a known baseline counts at its cost,
    so the steps end at the spend card. Rows written before causes were exact may leave a
    remainder: it is its own "unattributed" step.
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
        steps.append({"label": "unattributed", "kind": "step", "value": -other})
    steps.append({"label": "actual", "kind": "total", "value": baseline - savings})
    return steps


def _decisions(sql: LedgerSql, since: float | None) -> dict[str, Any]:
    """Cache hit rate (hits over lookups) and cascade escalation rate."""
    where, params = _where(sql, since)

    def count(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    def field(*path: str) -> str:
        return sql.json_text("techniques", *path)

    cache = field("cache", "result")
    counted = {
        "cache_hits": cache + " = 'hit'",
        "cache_misses": cache + " = 'miss'",
        "cache_bypassed": cache + " = 'bypass'",
        "cascaded": field("cascade") + " IS NOT NULL",
        "escalated": field("cascade", "accepted") + " <> " + field("cascade", "start"),
        "routed": field("route") + " IS NOT NULL",
    }
    columns = ", ".join(f"{count(condition)} AS {name}" for name, condition in counted.items())
    [row] = sql.rows(f"SELECT {columns} FROM requests {where}", params)
    counts = {name: int(value or 0) for name, value in row.items()}
    lookups = counts["cache_hits"] + counts["cache_misses"]
    counts["cache_hit_rate"] = counts["cache_hits"] / lookups if lookups else None
    cascaded = counts["cascaded"]
    counts["escalation_rate"] = counts["escalated"] / cascaded if cascaded else None
    return counts
