"""The self-contained HTML report: well-formed, escaped, offline, and robust to odd data."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from thrifty.replay.html import render_html
from thrifty.replay.svg import fmt_money, fmt_pct, nice_ticks

EVIL = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")

FULL: dict[str, Any] = {
    "title": "Thrifty replay — arena_bench_v1 (150 held-out requests)",
    "generated_at": "2026-11-28T06:10:00Z",
    "summary": {
        "requests": 150, "baseline_model": "gpt-4-1106-preview", "baseline_cost": 1.234,
        "actual_cost": 0.321, "savings_pct": 74.0, "quality_baseline": 0.87,
        "quality_actual": 0.84, "quality_retained": 0.965, "unpriced": 0, "missing_answers": 3,
    },
    "held_out": {
        "folds": 5, "savings_pct": 71.2, "savings_pct_ci": [65.0, 77.1],
        "quality_retained": 0.958, "quality_retained_ci": [0.93, 0.98], "target_quality": 0.95,
    },
    "candidates": [
        {"label": "threshold=0.2", "cost": 0.08, "quality_retained": 0.62, "chosen": False},
        {"label": "threshold=0.4", "cost": 0.19, "quality_retained": 0.83, "chosen": False},
        {"label": "threshold=0.6", "cost": 0.321, "quality_retained": 0.965, "chosen": True},
        {"label": "threshold=0.8", "cost": 0.62, "quality_retained": 0.98, "chosen": False},
        {"label": "threshold=0.9", "cost": 0.95, "quality_retained": 0.995, "chosen": False},
    ],
    "reference_points": [
        {"label": "always-baseline", "cost": 1.234, "quality_retained": 1.0},
        {"label": "always-cheapest", "cost": 0.01, "quality_retained": 0.41},
        {"label": "random-at-equal-cost", "cost": 0.321, "quality_retained": 0.72},
        {"label": "oracle", "cost": 0.12, "quality_retained": 1.0},
    ],
    "waterfall": [
        {"label": "baseline", "value": 1.234}, {"label": "routing", "value": -0.8},
        {"label": "cascade", "value": -0.2}, {"label": "overhead", "value": 0.05},
        {"label": "unattributed", "value": 0.037}, {"label": "actual", "value": 0.321},
    ],
    "by_model": [
        {"model": "gpt-3.5-turbo-1106", "requests": 90, "share": 0.6, "cost": 0.05},
        {"model": "gpt-4-1106-preview", "requests": 45, "share": 0.3, "cost": 0.26},
        {"model": "mixtral-8x7b-instruct-v0.1", "requests": 15, "share": 0.1, "cost": 0.011},
    ],
    "by_technique": {
        "routing": {"gross_savings": 0.8, "overhead_cost": 0.0, "net_savings": 0.8},
        "cascade": {"gross_savings": 0.25, "overhead_cost": 0.05, "net_savings": 0.2},
        "cache": {"gross_savings": 0.0, "overhead_cost": 0.0, "net_savings": 0.0},
    },
    "notes": [
        "3 requests had no recorded answer for the chosen model; they are excluded from cost"
        " and quality.",
        "Prices from examples/arena.yaml (list prices, November 2026).",
    ],
}  # fmt: skip

SECTION_TITLES = (
    "At a glance",
    "Cost vs. quality",
    "Savings waterfall",
    "Model share",
    "Savings by technique",
    "Notes",
)
VOID = {"meta", "br", "hr", "img", "input", "link"}


class TagBalance(HTMLParser):
    """Walks the page and records any close tag that does not match the open one."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href")]

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def parse(page: str) -> TagBalance:
    parser = TagBalance()
    parser.feed(page)
    parser.close()
    return parser


def test_full_report_is_well_formed_and_has_every_section() -> None:
    page = render_html(FULL)
    parser = parse(page)
    assert parser.errors == []
    assert parser.stack == []
    for tag in ("svg", "div", "table"):
        assert page.count(f"<{tag} ") + page.count(f"<{tag}>") == page.count(f"</{tag}>")
    assert page.count("<svg ") >= 3
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in page
    assert "held-out (5-fold) estimate: 71.2%" in page
    assert "chosen: threshold=0.6" in page
    assert "$1.23" in page and "74.0%" in page and "96.5%" in page


def test_page_is_offline_and_has_no_scripts() -> None:
    parser = parse(render_html(FULL))
    assert parser.scripts == 0
    assert not [u for u in parser.urls if re.match(r"\s*(https?:)?//", u)]
    page = render_html(FULL)
    assert "@import" not in page and "url(" not in page and "http" not in page


def test_user_text_is_escaped_everywhere() -> None:
    report = copy.deepcopy(FULL)
    report["title"] = EVIL
    report["summary"]["baseline_model"] = EVIL
    report["candidates"][2]["label"] = EVIL
    report["reference_points"][0]["label"] = EVIL
    report["waterfall"][1]["label"] = EVIL
    report["by_model"][0]["model"] = EVIL
    report["by_technique"] = {EVIL: {"gross_savings": 1, "overhead_cost": 0, "net_savings": 1}}
    report["notes"] = [EVIL, 'quote " and & amp']
    page = render_html(report)
    assert EVIL not in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert parse(page).errors == []


def test_sections_without_data_are_left_out() -> None:
    page = render_html({"summary": {"baseline_cost": 2.0, "actual_cost": 0.5}})
    assert "<h2>At a glance</h2>" in page
    assert "75.0%" in page  # savings derived from the two costs
    for title in SECTION_TITLES[1:]:
        assert f"<h2>{title}</h2>" not in page
    assert "held-out" not in page


@pytest.mark.parametrize(
    "report",
    [
        {"summary": {}},
        {"summary": {"baseline_cost": 0, "actual_cost": 0, "savings_pct": None}},
        {"summary": {}, "candidates": [], "reference_points": [], "waterfall": [],
         "by_model": [], "by_technique": {}, "notes": []},
        {"summary": {}, "candidates": [{"label": "only", "cost": 0.3, "quality_retained": 0.9,
                                        "chosen": True}]},
        {"summary": {}, "candidates": [{"label": "a", "cost": 0, "quality_retained": 1.0},
                                       {"label": "b", "cost": 0, "quality_retained": 1.0}],
         "reference_points": [{"label": "z", "cost": 0.0, "quality_retained": 1.0}],
         "held_out": {"target_quality": 1.0}},
        {"summary": {}, "candidates": [{"label": "bad", "cost": "x", "quality_retained": None}]},
        {"summary": {}, "waterfall": [{"label": "baseline", "value": 0}]},
        {"summary": {}, "waterfall": [{"label": "baseline", "value": 0},
                                      {"label": "actual", "value": 0}]},
        {"summary": {}, "waterfall": [{"label": "baseline", "value": 1},
                                      {"label": "x", "value": -3},
                                      {"label": "actual", "value": -2}]},
        {"summary": {}, "by_model": [{"model": "m", "requests": 0, "cost": 0}]},
        {"summary": {}, "by_model": [{"model": "m", "requests": 5, "share": 1.0, "cost": 0}],
         "by_technique": {"routing": {}}, "held_out": {"savings_pct": 10, "folds": 3}},
        {"summary": {"quality_retained": float("nan")}, "notes": "one note as a string"},
    ],
)  # fmt: skip
def test_degenerate_data_renders(report: dict[str, Any]) -> None:
    page = render_html(report)
    assert "nan" not in page.lower().replace("nano", "")
    assert parse(page).errors == []


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "$0.00"), (12.345, "$12.35"), (0.0123, "$0.0123"), (0.321, "$0.321"), (0.8, "$0.80"),
     (-0.2, "−$0.20"), (1234.5, "$1,234"), (0.000012345, "$0.0000123")],
)  # fmt: skip
def test_money_format(value: float, text: str) -> None:
    assert fmt_money(value) == text


def test_percent_and_ticks() -> None:
    assert fmt_pct(74) == "74.0%"
    assert fmt_pct(-1.25, signed=True) == "−1.2%"
    assert nice_ticks(0, 1.3) == [0, 0.5, 1.0, 1.5]
    assert nice_ticks(0.41, 1.0) == [0.4, 0.6, 0.8, 1.0]
    assert len(nice_ticks(0, 0)) >= 2 and len(nice_ticks(5, 5)) >= 2


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_screenshot_with_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    png = tmp_path / "report.png"
    page.write_text(render_html(FULL), encoding="utf-8")
    profile = tmp_path / "profile"
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1200,2000",
        page.as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    shutil.rmtree(profile, ignore_errors=True)
    assert png.exists() and png.stat().st_size > 0


def test_one_story_per_page_and_the_missing_answers_are_on_it() -> None:
    report = copy.deepcopy(FULL)
    report["summary"]["missing_answer_details"] = {"mixtral-8x7b-instruct-v0.1": 3}
    report["notes"] = ["3 requests had no recorded answer (see missing_answer_details)."]
    report.update(scope="the 150 served prompts", curve_scope="the 150 tuning prompts",
                  curve_page="tune.html")  # fmt: skip
    page = render_html(report)
    assert "Cost vs. quality" not in page, "a chart of other requests stays off this page"
    assert "Every number and chart on this page: the 150 served prompts." in page
    assert "is on its own page: tune.html" in page
    assert "missing_answer_details" in page and "mixtral-8x7b-instruct-v0.1" in page
    report.update(scope="the 150 tuning prompts")  # the tuner's own page: the same requests
    assert "Cost vs. quality" in render_html(report)


def test_the_quality_axis_ends_near_the_best_point() -> None:
    from thrifty.replay.svg import quality_ticks

    for lo, hi in ((0.028, 1.032), (0.41, 1.0), (0.9, 0.99), (0.0, 1.5)):
        ticks = quality_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi
        assert ticks[-1] - hi <= 0.1 * (ticks[-1] - ticks[0]) + 1e-9, (lo, hi, ticks)
    assert quality_ticks(0.028, 1.032)[-1] < 1.5
