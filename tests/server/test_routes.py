"""The server's route table is the whole HTTP surface: nothing is served that it does not
list, and features expose handlers, never routes of their own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.routing import Route
from tests.conftest import base_config

from thrifty.config.loader import parse_config
from thrifty.server.app import GatewayApp, build_app
from thrifty.server.routes import ROUTES

SRC = Path(__file__).resolve().parents[2] / "src" / "thrifty"


def _served(app: GatewayApp) -> set[tuple[str, str]]:
    """(path, method) of every Starlette route and every raw ASGI endpoint of the hot path."""
    served = set()
    for route in app.app.routes:
        assert isinstance(route, Route), f"{route!r} is not a plain route"
        served |= {(route.path, m) for m in route.methods or () if m != "HEAD"}
    served |= {(path, "POST") for path in app._fast_routes}
    return served


def _build(config: dict[str, Any], tmp_path: Path) -> GatewayApp:
    return build_app(parse_config(config), ledger_path=str(tmp_path / "ledger.db"))


def _close(app: GatewayApp) -> None:
    asyncio.run(app.state.runtime.aclose())


def test_everything_on_serves_exactly_the_table(tmp_path: Path) -> None:
    config = base_config(
        "http://127.0.0.1:9",
        auth={"admin_keys": ["admin-key"]},
        batching={"enabled": True, "jobs": {"enabled": True, "path": str(tmp_path / "jobs.db")}},
        metrics={"enabled": True},
        dashboard={"enabled": True},
    )
    app = _build(config, tmp_path)
    try:
        table = {(entry.path, m) for entry in ROUTES for m in entry.methods}
        assert _served(app) == table
        assert len(table) == len(ROUTES), "a (path, method) is listed twice"
    finally:
        _close(app)


def test_features_that_are_off_add_no_routes(tmp_path: Path) -> None:
    config = base_config("http://127.0.0.1:9", metrics={"enabled": False},
                         dashboard={"enabled": False})  # fmt: skip
    app = _build(config, tmp_path)
    try:
        features = {"jobs", "metrics", "dashboard"}
        expected = {(e.path, m) for e in ROUTES if e.feature not in features for m in e.methods}
        assert _served(app) == expected
    finally:
        _close(app)


def test_the_hot_path_serves_only_raw_post_entries(tmp_path: Path) -> None:
    app = _build(base_config("http://127.0.0.1:9"), tmp_path)
    try:
        raw = {e.path for e in ROUTES if e.handler is None}
        model_endpoints = {"/v1/chat/completions", "/v1/embeddings", "/v1/responses",
                           "/v1/messages", "/v1/completions"}  # fmt: skip
        assert set(app._fast_routes) == raw == model_endpoints
        assert all(e.methods == ("POST",) for e in ROUTES if e.handler is None)
    finally:
        _close(app)


def test_only_the_server_builds_routes() -> None:
    """Features hand the server handlers; a ``Route`` anywhere else is a route it misses."""
    own_servers = {"server", "upstream"}  # the test upstream is a server of its own
    builders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "starlette.routing" in path.read_text()
        and path.relative_to(SRC).parts[0] not in own_servers
    ]
    assert builders == []
