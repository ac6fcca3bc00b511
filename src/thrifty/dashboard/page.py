"""Server-rendered HTML of the dashboard and its login page.

Every number is in the HTML (tables carry the exact value in ``data-usd``); the charts
are drawn by ``static/dashboard.js`` from the same data, embedded as a JSON block, so
the page works as tables without JavaScript. Everything user-controlled (model names,
tags, error text) is escaped; the JSON block escapes ``<`` so it cannot end the tag.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from typing import Any

import orjson

from thrifty.dashboard.queries import RANGES

STATIC = "/dashboard/static"


def usd(value: float | None) -> str:
    """Money for people: cents when it is dollars, six decimals when it is fractions."""
    if value is None:
        return "–"
    if value == 0:
        return "$0"
    sign, v = ("-" if value < 0 else ""), abs(value)
    if v >= 100:
        return f"{sign}${v:,.2f}"
    text = f"{v:,.6f}".rstrip("0").rstrip(".")
    return f"{sign}${text}" if text != "0" else f"{sign}<$0.000001"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _cell_usd(value: float | None) -> str:
    raw = "" if value is None else f"{value:.12g}"
    return f"<td class=num data-usd='{raw}'>{usd(value)}</td>"


def _doc(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><link rel=icon href='data:,'>"
        f"<link rel=stylesheet href='{STATIC}/dashboard.css'></head><body>{body}</body></html>"
    )


def login_page(error: str | None = None, *, locked: bool = False) -> str:
    """The login form; ``locked`` when no admin key is configured, so none can work."""
    note = (
        "<p class=error>The dashboard is locked: no <code>auth.admin_keys</code> are "
        "configured.</p>"
        if locked
        else f"<p class=error role=alert>{escape(error)}</p>"
        if error
        else ""
    )
    return _doc(
        "Thrifty — log in",
        "<main class=login><h1>Thrifty dashboard</h1>"
        f"{note}<form method=post action='/dashboard/login'>"
        "<label for=key>Admin key</label>"
        "<input id=key name=key type=password autocomplete=current-password required autofocus>"
        "<button type=submit>Log in</button></form></main>",
    )


def dashboard_page(
    data: dict[str, Any], who: str, budget_html: str | None, shadow_html: str | None = None
) -> str:
    """The whole dashboard for one time range."""
    t = data["totals"]
    d = data["decisions"]
    ranges = " ".join(
        f"<a href='/dashboard?range={name}'"
        + (" aria-current=page" if name == data["range"] else "")
        + f">{name}</a>"
        for name in RANGES
    )
    warnings = "".join(f"<p class=warning>{escape(w)}</p>" for w in data["warnings"])
    cards = [
        ("spend", "Spend", usd(t["cost"]), t["cost"]),
        ("baseline", "Baseline", usd(t["baseline_cost"]), t["baseline_cost"]),
        ("savings", "Saved", f"{usd(t['savings'])} ({pct(_ratio(t))})", t["savings"]),
        ("requests", "Requests", f"{t['requests']:,} ({t['errors']:,} errors)", t["requests"]),
        ("cache-hit-rate", "Cache hit rate",
         f"{pct(d['cache_hit_rate'])} ({d['cache_hits']}/{d['cache_hits'] + d['cache_misses']})",
         d["cache_hit_rate"]),
        ("escalation-rate", "Cascade escalations",
         f"{pct(d['escalation_rate'])} ({d['escalated']}/{d['cascaded']})", d["escalation_rate"]),
        ("unpriced", "Unpriced requests", f"{t['unpriced_requests']:,}", t["unpriced_requests"]),
    ]  # fmt: skip
    card_html = "".join(
        f"<div class=card id=card-{cid}><div class=label>{label}</div>"
        f"<div class=value data-value='{'' if raw is None else raw}'>{escape(text)}</div></div>"
        for cid, label, text, raw in cards
    )
    body = (
        "<header><h1>Thrifty</h1>"
        f"<nav aria-label='time range'>{ranges}</nav>"
        f"<form method=post action='/dashboard/logout'><span class=who>admin {escape(who)}</span>"
        "<button type=submit>Log out</button></form></header><main>"
        f"{warnings}<section class=cards>{card_html}</section>"
        "<section class=charts>"
        + _chart("spend", "Spend and savings over time")
        + _chart("waterfall", "Savings by cause, net of overhead")
        + "</section>"
        + _waterfall_table(data["waterfall"])
        + "<section class=groups>"
        + _group("model", "Cost by model", data["by_model"])
        + _group("key", "Cost by key", data["by_key"])
        + _group("team", "Cost by team", data["by_team"])
        + _group("tag", "Cost by tag", data["by_tag"])
        + "</section>"
        + (budget_html or "")
        + (shadow_html or "")
        + _latest(data["latest"])
        + "</main>"
        + f"<script type=application/json id=dashboard-data>{_json(data)}</script>"
        + f"<script src='{STATIC}/chart.umd.min.js'></script>"
        + f"<script src='{STATIC}/dashboard.js'></script>"
    )
    return _doc("Thrifty dashboard", body)


def _ratio(t: dict[str, Any]) -> float | None:
    if not t["baseline_cost"] or t["savings"] is None:
        return None
    return t["savings"] / t["baseline_cost"]


def _chart(cid: str, title: str) -> str:
    return (
        f"<figure class=chart><figcaption>{title}</figcaption>"
        f"<div class=canvas-box><canvas id=chart-{cid} role=img aria-label='{title}'></canvas>"
        "</div></figure>"
    )


def _waterfall_table(steps: list[dict[str, Any]]) -> str:
    rows = (
        "".join(f"<tr><td>{escape(s['label'])}</td>{_cell_usd(s['value'])}</tr>" for s in steps)
        or "<tr><td colspan=2>no requests with a known baseline</td></tr>"
    )
    return (
        "<details class=waterfall-table><summary>Waterfall as a table</summary>"
        f"<table class=data id=table-waterfall><tbody>{rows}</tbody></table></details>"
    )


def _group(cid: str, title: str, groups: list[dict[str, Any]]) -> str:
    rows = (
        "".join(
            f"<tr><td>{escape(str(g['key']))}</td><td class=num>{g['requests']:,}</td>"
            f"{_cell_usd(g['cost'])}{_cell_usd(g.get('savings'))}"
            f"<td class=num>{g.get('unpriced') or 0:,}</td></tr>"
            for g in groups
        )
        or "<tr><td colspan=5>no requests</td></tr>"
    )
    return (
        f"<figure class=group><figcaption>{title}</figcaption>"
        f"<div class=canvas-box><canvas id=chart-{cid} role=img aria-label='{title}'>"
        "</canvas></div>"
        f"<table class=data id=table-{cid}><thead><tr><th>{cid}</th><th>requests</th>"
        "<th>cost</th><th>saved</th><th>unpriced</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></figure>"
    )


def decisions(techniques: dict[str, Any]) -> list[str]:
    """One short phrase per technique that acted on a request."""
    out = []
    cache = techniques.get("cache")
    if cache and cache.get("result"):
        kind = f" ({cache['type']})" if cache.get("type") and cache["result"] == "hit" else ""
        out.append(f"cache {cache['result']}{kind}")
    route = techniques.get("route")
    if route:
        out.append(f"routed to {route.get('model')}" + (
            f" ({route['reason']})" if route.get("reason") else ""))  # fmt: skip
    cascade = techniques.get("cascade")
    if cascade:
        start, accepted = cascade.get("start"), cascade.get("accepted")
        out.append(
            f"cascade {start} → {accepted} (escalated)"
            if start != accepted
            else f"cascade accepted {accepted}"
        )
    out.extend(name for name in techniques if name not in ("cache", "route", "cascade"))
    return out


def _latest(rows: Iterable[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        when = datetime.fromtimestamp(r["ts"], UTC).strftime("%m-%d %H:%M:%S")
        cost = "unpriced" if r["unpriced"] else usd(r["cost"])
        status = r["status"] if r["status"] == "ok" else f"{r['status']} {r['http_status']}"
        tags = ", ".join(f"{k}={v}" for k, v in (r.get("tags") or {}).items())
        body.append(
            f"<tr data-request-id='{escape(r['request_id'])}'><td>{when}</td>"
            f"<td class=mono>{escape(r['request_id'])}</td>"
            f"<td>{escape(r['requested_model'])}</td><td>{escape(r.get('model') or '–')}</td>"
            f"<td>{escape(status)}</td>"
            f"<td>{escape('; '.join(decisions(r.get('techniques') or {})) or '–')}</td>"
            f"<td class=num data-usd='{'' if r['unpriced'] else r['cost']}'>{cost}</td>"
            f"{_cell_usd(r.get('baseline_cost'))}"
            f"<td>{escape(r.get('key_id') or '–')}</td><td>{escape(tags)}</td></tr>"
        )
    rows_html = "".join(body) or "<tr><td colspan=10>no requests in this range</td></tr>"
    return (
        "<section id=latest><h2>Latest requests</h2><table class=data id=table-latest><thead><tr>"
        "<th>time (UTC)</th><th>request id</th><th>model asked</th><th>model used</th>"
        "<th>status</th><th>decisions</th><th>cost</th><th>baseline</th><th>key</th>"
        f"<th>tags</th></tr></thead><tbody>{rows_html}</tbody></table></section>"
    )


def _json(data: dict[str, Any]) -> str:
    charts = {
        "series": data["series"],
        "waterfall": data["waterfall"],
        "groups": {
            name: [{"key": str(g["key"]), "cost": g["cost"]} for g in data[f"by_{name}"]]
            for name in ("model", "key", "team", "tag")
        },
    }
    return orjson.dumps(charts).decode().replace("<", "\\u003c")
