"""The dashboard on a PostgreSQL ledger, over HTTP: same traffic, same numbers as SQLite.

Two real gateways get the same real requests: one writes its ledger to a real PostgreSQL
(tests/shared_servers.py), the other to SQLite. Each renders its dashboard; the cards,
charts and team table of the PostgreSQL one must show what was sent, and equal the SQLite
one's (the browser test, tests/dashboard/test_dashboard_browser.py, covers the page's rendering).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from tests.conftest import Gateway, ServerThread
from tests.dashboard.test_dashboard import cookie_of, login, request
from tests.dashboard.test_dashboard_browser import ADMIN_KEY, dashboard_config, send_traffic


def shown(gateway: Gateway) -> dict[str, Any]:
    """What the page shows: card values, chart data, team table rows."""
    status, headers, _ = login(gateway, ADMIN_KEY)
    assert status == 303
    status, _, body = request(gateway, "GET", "/dashboard?range=24h",
                              headers={"cookie": cookie_of(headers)})  # fmt: skip
    assert status == 200
    page = body.decode()
    cards = dict(re.findall(r"id=card-([\w-]+)>.*?data-value='([^']*)'", page))
    [charts] = re.findall(r"<script type=application/json id=dashboard-data>(.*?)</script>", page)
    [team_table] = re.findall(r"<table class=data id=table-team>(.*?)</table>", page, re.S)
    rows = re.findall(r"<tr><td>([^<]*)</td><td class=num>([\d,]+)</td>", team_table)
    teams = {html.unescape(name): int(n.replace(",", "")) for name, n in rows}
    return {"cards": cards, "charts": json.loads(charts), "teams": teams}


def test_dashboard_reads_a_postgres_ledger(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    postgres_dsn: str,
) -> None:
    config = dashboard_config(upstream.url)
    on_sqlite = start_gateway(config)
    on_postgres = start_gateway(
        {**config, "ledger": {"store": "postgres", "dsn": postgres_dsn, "flush_interval_ms": 20}}
    )
    replies = send_traffic(on_postgres)
    send_traffic(on_sqlite)
    pg, lite = shown(on_postgres), shown(on_sqlite)

    cards = pg["cards"]
    assert int(cards["requests"]) == len(replies) == 5
    assert int(cards["unpriced"]) == 1  # the passthrough model has no price
    assert float(cards["spend"]) > 0 and float(cards["baseline"]) > float(cards["spend"])
    hits = sum(r["cache"].startswith("hit") for r in replies)
    assert hits == 1 and 0 < float(cards["cache-hit-rate"]) < 1
    assert float(cards["escalation-rate"]) > 0
    assert sum(pg["charts"]["series"]["requests"]) == 5
    assert pg["teams"] == {"search": 2, "ads": 2, "research": 1}
    assert {"exact_cache", "cascade"} <= {s["label"] for s in pg["charts"]["waterfall"]}

    assert pg["teams"] == lite["teams"]
    assert pg["cards"].keys() == lite["cards"].keys()
    for name, value in pg["cards"].items():
        other = lite["cards"][name]
        assert (value == other == "") or float(value) == pytest.approx(float(other)), name
    assert pg["charts"]["series"]["requests"] == lite["charts"]["series"]["requests"]
    assert pg["charts"]["series"]["cost"] == pytest.approx(lite["charts"]["series"]["cost"])
    for name in ("model", "key", "team", "tag"):
        ours, theirs = pg["charts"]["groups"][name], lite["charts"]["groups"][name]
        assert [g["key"] for g in ours] == [g["key"] for g in theirs], name
        assert [g["cost"] for g in ours] == pytest.approx([g["cost"] for g in theirs]), name
