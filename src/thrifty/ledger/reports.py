"""Cost and savings reports over a ledger store: what was spent, what was saved, by whom.

Numbers are sums of stored rows, nothing estimated here. Requests with tokens but no known
price are counted and flagged, never priced at $0 silently.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from thrifty.ledger.stores.base import LedgerStore

__all__ = ["REPORT_GROUPS", "build_report", "parse_since", "render_table"]

#: Values of ``by`` accepted by :func:`build_report`.
REPORT_GROUPS = ("model", "day", "tag", "key", "team", "provider", "api")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_COLUMNS = ("requests", "errors", "cost", "baseline", "savings", "share", "unpriced")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds for "1d", "12h", "30m" (ago), "2026-11-01" or an ISO datetime.

    Dates and naive datetimes are taken as UTC, like the ledger's ``day`` column.
    """
    match = _RELATIVE.match(text)
    if match:
        ago = float(match.group(1)) * _UNITS[match.group(2)]
        return (time.time() if now is None else now) - ago
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"cannot read since={text!r}: use e.g. 30m, 12h, 7d, 2026-11-01 or an ISO datetime"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def build_report(
    store: LedgerStore, since: float | None = None, by: str = "model", until: float | None = None
) -> dict[str, Any]:
    """Totals and per-group sums of the requests with ``since <= ts < until``.

    Returns a JSON-ready dict: ``totals``, ``groups`` (costliest first; by day, in date
    order), ``unpriced`` (requests whose cost is a lower bound) and ``warnings``. With
    ``by="tag"`` a request counts once per tag, so group shares may add up to more than 1.
    A request without a known baseline (unpriced) counts in the baseline at its cost, so
    every headline keeps ``savings == baseline_cost - cost``, failed requests included;
    baseline and savings are None where no request in scope had a known baseline.
    ``by_technique`` is the savings by cause (docs/ledger.md), which add up to ``savings``.
    """
    if by not in REPORT_GROUPS:
        raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(REPORT_GROUPS)}")
    rows = store.aggregate("all", since, until)
    totals = _totals(rows[0] if rows else {})
    groups = [_group(row, totals["cost"]) for row in store.aggregate(by, since, until)]
    if by == "day":
        groups.sort(key=lambda g: g["key"])
    else:
        groups.sort(key=lambda g: (-g["cost"], str(g["key"])))
    return {
        "by": by,
        "since": since,
        "until": until,
        "totals": totals,
        "groups": groups,
        "unpriced": totals["unpriced_requests"],
        "by_technique": store.technique_savings(since, until),
        "warnings": _warnings(totals),
    }


def _baseline(row: dict[str, Any]) -> tuple[float | None, float | None]:
    if not row.get("baseline_requests"):
        return None, None
    return float(row["baseline_cost"]), float(row["savings"])


def _totals(row: dict[str, Any]) -> dict[str, Any]:
    baseline, savings = _baseline(row)
    pct = savings / baseline * 100 if baseline and savings is not None else None
    return {
        "requests": int(row.get("requests", 0)),
        "errors": int(row.get("errors", 0)),
        "cancelled": int(row.get("cancelled", 0)),
        "cost": float(row.get("cost", 0.0)),
        "baseline_cost": baseline,
        "savings": savings,
        "savings_pct": pct,
        "input_tokens": int(row.get("input_tokens", 0)),
        "output_tokens": int(row.get("output_tokens", 0)),
        "cached_input_tokens": int(row.get("cached_input_tokens", 0)),
        "reasoning_tokens": int(row.get("reasoning_tokens", 0)),
        "cache_write_tokens": int(row.get("cache_write_tokens", 0)),
        "cache_write_1h_tokens": int(row.get("cache_write_1h_tokens", 0)),
        "audio_tokens": int(row.get("audio_tokens", 0)),
        "image_tokens": int(row.get("image_tokens", 0)),
        "unpriced_requests": int(row.get("unpriced", 0)),
        "estimated_token_requests": int(row.get("estimated", 0)),
    }


def _group(row: dict[str, Any], total_cost: float) -> dict[str, Any]:
    baseline, savings = _baseline(row)
    cost = float(row["cost"])
    return {
        "key": row["key"],
        "requests": int(row["requests"]),
        "errors": int(row["errors"]),
        "cost": cost,
        "baseline_cost": baseline,
        "savings": savings,
        "share_of_cost": cost / total_cost if total_cost else 0.0,
        "unpriced": int(row["unpriced"]),
        "input_tokens": int(row["input_tokens"]),
        "output_tokens": int(row["output_tokens"]),
    }


def _warnings(totals: dict[str, Any]) -> list[str]:
    out = []
    if totals["unpriced_requests"]:
        n = totals["unpriced_requests"]
        out.append(f"{n} requests have no known price; their cost is NOT included")
    if totals["estimated_token_requests"]:
        n = totals["estimated_token_requests"]
        out.append(f"{n} requests have estimated token counts; their cost is approximate")
    return out


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.6f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def render_table(report: dict[str, Any]) -> str:
    """Plain-text rendering of :func:`build_report`'s result, for terminals and logs."""
    t = report["totals"]
    since = report.get("since")
    scope = "all time" if since is None else "since " + _stamp(since)
    lines = [
        f"Thrifty ledger report, by {report['by']}, {scope}",
        f"requests {t['requests']:,} (errors {t['errors']:,})  cost {_money(t['cost'])}  "
        f"baseline {_money(t['baseline_cost'])}  savings {_money(t['savings'])} "
        f"({_pct(t['savings_pct'])})",
        f"tokens in {t['input_tokens']:,} (cached {t['cached_input_tokens']:,})  "
        f"out {t['output_tokens']:,} (reasoning {t['reasoning_tokens']:,})  "
        f"cache writes {t['cache_write_tokens']:,} (1 hour {t['cache_write_1h_tokens']:,})  "
        f"audio {t['audio_tokens']:,}  image {t['image_tokens']:,}",
        f"unpriced requests: {report['unpriced']:,}",
    ]
    if report.get("by_technique"):
        parts = [f"{name} {_money(saved)}" for name, saved in report["by_technique"].items()]
        lines.append("savings by cause (net of their overhead): " + ", ".join(parts))
    lines += [f"WARNING: {w}" for w in report["warnings"]]
    headers = [report["by"], *_COLUMNS]
    rows = [_cells(g) for g in report["groups"]]
    return "\n".join([*lines, "", _table(headers, rows)])


def _cells(g: dict[str, Any]) -> list[str]:
    return [
        str(g["key"]),
        f"{g['requests']:,}",
        f"{g['errors']:,}",
        _money(g["cost"]),
        _money(g["baseline_cost"]),
        _money(g["savings"]),
        _pct(g["share_of_cost"] * 100),
        f"{g['unpriced']:,}",
    ]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Align columns: the first left-aligned (a name), the rest right-aligned (numbers)."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
