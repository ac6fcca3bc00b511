"""The dashboard over plain HTTP: login, session cookie, refusals, static files, budgets."""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

from thrifty.config import parse_config
from thrifty.dashboard.budget_panel import render_budget_section
from thrifty.dashboard.page import decisions, usd
from thrifty.dashboard.session import COOKIE, SessionSigner
from thrifty.governance.budgets.base import BucketUsage, BudgetBucket
from thrifty.server import build_app

ADMIN_KEY = "admin-key-for-http-tests"


def request(
    gateway: Gateway,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def login(gateway: Gateway, key: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    form = urllib.parse.urlencode({"key": key}).encode()
    return request(gateway, "POST", "/dashboard/login", form,
                   {"content-type": "application/x-www-form-urlencoded", **headers})  # fmt: skip


@pytest.fixture
def dash(upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]) -> Gateway:
    return start_gateway(
        base_config(upstream.url, auth={"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]})
    )


def cookie_of(headers: dict[str, str]) -> str:
    return headers["set-cookie"].split(";")[0]


def test_login_sets_a_strict_http_only_cookie_and_opens_the_page(dash: Gateway) -> None:
    status, headers, _ = request(dash, "GET", "/dashboard")
    assert status == 303 and headers["location"] == "/dashboard/login"
    status, headers, body = request(dash, "GET", "/dashboard/login")
    assert status == 200 and b"name=key" in body
    assert "script-src 'self'" in headers["content-security-policy"]

    status, headers, _ = login(dash, ADMIN_KEY)
    assert status == 303 and headers["location"] == "/dashboard"
    flags = [f.strip().lower() for f in headers["set-cookie"].split(";")]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/dashboard" in flags
    assert ADMIN_KEY not in headers["set-cookie"]

    status, headers, body = request(dash, "GET", "/dashboard?range=24h",
                                    headers={"cookie": cookie_of(headers)})  # fmt: skip
    assert status == 200 and headers["cache-control"] == "no-store"
    assert b"id=dashboard-data" in body and b"Latest requests" in body


def test_wrong_keys_tampered_cookies_and_bad_input_are_refused(dash: Gateway) -> None:
    for key in (GATEWAY_KEY, "nope", ""):
        status, headers, body = login(dash, key)
        assert status == 401 and "set-cookie" not in headers and b"not an admin key" in body

    _, headers, _ = login(dash, ADMIN_KEY)
    name, value = cookie_of(headers).split("=", 1)
    payload, signature = value.split(".")
    forged = f"{name}={payload[:-2]}xx.{signature}"
    status, headers, _ = request(dash, "GET", "/dashboard", headers={"cookie": forged})
    assert status == 303 and headers["location"] == "/dashboard/login"

    status, _, body = request(dash, "GET", "/dashboard?range=forever",
                              headers={"cookie": f"{name}={value}"})  # fmt: skip
    error = orjson.loads(body)["error"]
    assert status == 400 and error["param"] == "range" and "forever" in error["message"]

    status, _, body = request(dash, "POST", "/dashboard/login", b'{"key": "x"}',
                              {"content-type": "application/json"})  # fmt: skip
    assert status == 400 and orjson.loads(body)["error"]["code"] == "invalid_body"

    status, _, body = login(dash, ADMIN_KEY, origin="https://evil.example", host="127.0.0.1")
    assert status == 403 and orjson.loads(body)["error"]["type"] == "permission_error"

    status, _, body = login(dash, ADMIN_KEY * 400)
    assert status == 413


def test_static_files_and_unknown_ones(dash: Gateway) -> None:
    status, headers, body = request(dash, "GET", "/dashboard/static/chart.umd.min.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert body.startswith(b"/*!\n * Chart.js v4")
    status, _, body = request(dash, "GET", "/dashboard/static/..%2Fsession.py")
    assert status == 404 and orjson.loads(body)["error"]["code"] == "not_found"


def test_no_admin_keys_means_locked(gateway: Gateway) -> None:
    status, _, body = request(gateway, "GET", "/dashboard/login")
    assert status == 200 and b"locked" in body
    status, _, _ = login(gateway, GATEWAY_KEY)
    assert status == 401


def test_dashboard_can_be_switched_off(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(base_config(upstream.url, dashboard={"enabled": False}))
    status, _, body = request(gateway, "GET", "/dashboard")
    assert status == 404 and orjson.loads(body)["error"]["code"] == "not_found"


def test_session_signer_expiry_and_key_rotation() -> None:
    signer = SessionSigner(["a-admin-key"], ttl_s=60)
    value = signer.issue("key-abc", now=1000.0)
    assert signer.check(value, now=1059.0) == "key-abc"
    assert signer.check(value, now=1060.0) is None  # expired
    assert SessionSigner(["another-key"], ttl_s=60).check(value, now=1001.0) is None
    assert SessionSigner([], ttl_s=60).check(value, now=1001.0) is None
    assert signer.check("garbage", now=1001.0) is None
    assert signer.check(f"{COOKIE}.x.y", now=1001.0) is None


def test_budget_section_renders_the_contract_dataclasses() -> None:
    day = BudgetBucket("team:research", "day", "2026-11-28", 10.0, time.time() + 3600)
    life = BudgetBucket("key:key-1", "lifetime", "lifetime", 2.0, None)
    html = render_budget_section([BucketUsage(day, 7.5, 0.5), BucketUsage(life, 2.5, 0.0)])
    assert "team:research" in html and "$10.0000" in html and "80.0%" in html
    assert "class=high" in html and "class=over" in html and "125.0%" in html and "never" in html
    assert "<script" not in render_budget_section([
        BucketUsage(BudgetBucket("tag:<script>", "day", "d", 1.0, None), 0.0, 0.0)
    ])  # fmt: skip


def test_money_and_decision_wording() -> None:
    assert [usd(v) for v in (None, 0, 0.000541, 1234.5, -0.0000004, 0.0000000001)] == [
        "–", "$0", "$0.000541", "$1,234.50", "-<$0.000001", "<$0.000001",
    ]  # fmt: skip
    assert decisions({
        "cache": {"result": "miss", "type": "exact"},
        "cascade": {"start": "mini", "accepted": "big", "tiers": []},
    }) == ["cache miss", "cascade mini → big (escalated)"]  # fmt: skip


def test_login_origin_that_is_not_a_url_or_null_is_refused(dash: Gateway) -> None:
    for origin in ("http://[::1", "null"):
        status, headers, body = login(dash, ADMIN_KEY, origin=origin)
        assert status == 403 and "set-cookie" not in headers
        assert orjson.loads(body)["error"]["type"] == "permission_error"
    status, headers, _ = login(dash, ADMIN_KEY, origin=f"http://127.0.0.1:{dash.server.port}")
    assert status == 303 and COOKIE in headers["set-cookie"]


def test_the_page_reads_a_ledger_whose_path_has_uri_characters(
    upstream: ServerThread, tmp_path: Path
) -> None:
    """``#`` in a file URI starts a fragment: the page must still open this very file."""
    ledger = tmp_path / "ledgers #1" / "ledger.db"
    config = base_config(upstream.url, auth={"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]})
    app = build_app(parse_config(config), ledger_path=str(ledger))
    with ServerThread(app) as server:
        gateway = Gateway(server, ledger)
        with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY) as client:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi #1"}]
            )
        gateway.flush()
        _, headers, _ = login(gateway, ADMIN_KEY)
        status, _, body = request(gateway, "GET", "/dashboard?range=all",
                                  headers={"cookie": cookie_of(headers)})  # fmt: skip
    assert status == 200 and b"gpt-4o-mini" in body


def test_budget_section_says_so_when_the_budget_store_is_down() -> None:
    """The hook reads a real Redis budget store at a port nothing listens on."""
    import asyncio
    from types import SimpleNamespace

    from thrifty.dashboard.budget_panel import budget_section
    from thrifty.governance.budgets.redis import RedisBudgetStore
    from thrifty.stores.config import RedisConfig
    from thrifty.stores.redis import RedisLink

    pytest.importorskip("redis")
    store = RedisBudgetStore(RedisLink(RedisConfig(url="redis://127.0.0.1:9/0", timeout_s=1)))
    bucket = BudgetBucket("key:key-1", "day", "2026-11-28", 5.0, None)

    runtime = SimpleNamespace(budget_usage=lambda: store.usage((bucket,)))

    async def page_section() -> str | None:
        try:
            return await budget_section(runtime)
        finally:
            await store.aclose()

    html = asyncio.run(page_section())
    assert html is not None and "budget use is unavailable" in html
