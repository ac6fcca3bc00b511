"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

A real gateway serves real traffic (official ``openai`` SDK, test upstream) with a
cascade, the exact cache and a passthrough model with no price; the browser logs in and
checks that cards, charts and tables show what the responses' own headers said.
Set ``THRIFTY_SAVE_SCREENSHOT=1`` to also refresh ``docs/images/dashboard.png``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

CHROMIUM = "/usr/bin/chromium"
ADMIN_KEY = "admin-key-for-the-browser-test"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard.png"


def _need_chromium() -> None:
    """Skip on a developer machine without Chromium; in CI (THRIFTY_CI set) fail instead."""
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("THRIFTY_CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.problems = []  # console errors (CSP violations included) and page errors
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        yield page
        browser.close()


def dashboard_config(upstream_url: str) -> dict[str, Any]:
    config = base_config(
        upstream_url, default_model="gpt-4o", baseline_model="gpt-4o", passthrough_provider="up"
    )
    config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
    config["cache"] = {"enabled": True, "store": "memory"}
    config["cascade"] = {
        "enabled": True,
        "tiers": [{"model": "gpt-4o-mini", "checks": ["heuristics"]}, {"model": "gpt-4o"}],
    }
    return config


def send_traffic(gateway: Gateway) -> list[dict[str, Any]]:
    """Real requests; returns what each response's headers said."""
    sent = [
        ("auto", "Name a colour.", {}, "team=search"),
        ("auto", "Name a colour.", {}, "team=search"),  # the same again: a cache hit
        ("auto", "Explain why the sky is blue.", {"max_tokens": 3}, "team=ads"),  # escalates
        ("gpt-4o", "Write a haiku about thrift.", {}, "team=ads,env=prod"),
        ("mystery-model-x", "Hello there.", {}, "team=research"),  # passthrough: unpriced
    ]
    out = []
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        for model, text, params, tags in sent:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": text}], temperature=0,
                extra_headers={"x-thrifty-tags": tags}, **params,
            )  # fmt: skip
            out.append({"asked": model, "tags": tags, **{
                k.removeprefix("x-thrifty-"): v for k, v in raw.headers.items()
                if k.startswith("x-thrifty-")}})  # fmt: skip
    gateway.flush()
    return out


@pytest.mark.slow
def test_dashboard_in_chromium_shows_the_ledger(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    browser_page: Any,
    tmp_path: Path,
) -> None:
    gateway = start_gateway(dashboard_config(upstream.url))
    replies = send_traffic(gateway)
    priced = [r for r in replies if r["cost"] != "unpriced"]
    spend = sum(float(r["cost"]) for r in priced)
    hits = sum(r.get("cache", "").startswith("hit") for r in replies)
    lookups = sum("cache" in r for r in replies)
    auto = [r for r in replies if r["asked"] == "auto" and not r["cache"].startswith("hit")]
    escalated = sum(r["model"] == "gpt-4o" for r in auto)
    assert spend > 0 and hits == 1 and lookups == 5 and escalated == 1 and len(auto) == 2

    page = browser_page
    page.goto(f"{gateway.url}/dashboard")
    assert page.url.endswith("/dashboard/login")
    page.fill("#key", GATEWAY_KEY)  # a gateway key is not an admin key
    page.click("button[type=submit]")
    assert "not an admin key" in page.inner_text("[role=alert]")
    assert page.problems == ["Failed to load resource: the server responded with a status of 401"
                             " (Unauthorized)"]  # fmt: skip
    page.problems.clear()
    page.fill("#key", ADMIN_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector("#table-latest")
    assert page.url.endswith("/dashboard")

    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
    assert page.evaluate("document.cookie") == "", "scripts cannot read the session"

    def card(name: str) -> str:
        return page.get_attribute(f"#card-{name} .value", "data-value") or ""

    assert float(card("spend")) == pytest.approx(spend, rel=1e-9)
    assert int(card("requests")) == len(replies)
    assert int(card("unpriced")) == 1
    assert float(card("cache-hit-rate")) == pytest.approx(hits / lookups)
    assert float(card("escalation-rate")) == pytest.approx(escalated / len(auto))

    charts = page.evaluate(
        """() => Object.fromEntries(
            ["spend", "waterfall", "model", "key", "team", "tag"].map((id) => {
                const chart = Chart.getChart("chart-" + id);
                return [id, {labels: chart.data.labels,
                             data: chart.data.datasets.map((d) => d.data)}];
            }))"""
    )
    assert sum(charts["spend"]["data"][0]) == pytest.approx(spend, rel=1e-9)
    assert {"gpt-4o-mini", "gpt-4o", "mystery-model-x"} <= set(charts["model"]["labels"])
    assert {"search", "ads", "research"} == set(charts["team"]["labels"])
    assert "team=ads" in charts["tag"]["labels"] and "env=prod" in charts["tag"]["labels"]
    assert sum(charts["model"]["data"][0]) == pytest.approx(spend, rel=1e-9)
    # the waterfall starts at the baseline, ends at the actual cost, steps per technique
    labels = charts["waterfall"]["labels"]
    assert labels[0] == "baseline" and labels[-1] == "actual"
    assert {"exact_cache", "cascade"} <= set(labels)
    bars = charts["waterfall"]["data"][0]
    assert bars[-1][1] == pytest.approx(spend, rel=1e-9)  # it ends at the spend card

    latest = page.inner_text("#table-latest")
    for reply in replies:
        row = page.inner_text(f"#table-latest tr[data-request-id='{reply['request-id']}']")
        assert reply["model"] in row
    hit = next(r for r in replies if r["cache"].startswith("hit"))
    assert "cache hit (exact)" in page.inner_text(
        f"#table-latest tr[data-request-id='{hit['request-id']}']"
    )
    assert "(escalated)" in latest and "unpriced" in latest
    ads_row = page.inner_text("#table-team tr:has-text('ads')")
    assert "2" in ads_row.split()

    assert page.query_selector("#budgets") is None, "no budget store: no budget section"
    assert page.problems == [], page.problems

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if os.environ.get("THRIFTY_SAVE_SCREENSHOT"):
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    page.click("header button[type=submit]")  # log out
    page.wait_for_url("**/dashboard/login")
    assert page.context.cookies() == []
