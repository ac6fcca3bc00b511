"""Logging out of the dashboard ends the session on the server, and repeated wrong keys
lock the login out for a while (issue 16, item 15)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config
from tests.dashboard.test_dashboard import ADMIN_KEY, cookie_of, login, request


def dash_config(upstream_url: str, **dashboard: Any) -> dict[str, Any]:
    auth = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
    return base_config(upstream_url, auth=auth, dashboard=dashboard)


@pytest.fixture
def dash(upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]) -> Gateway:
    return start_gateway(dash_config(upstream.url))


def test_logout_ends_the_session_on_the_server(dash: Gateway) -> None:
    _, headers, _ = login(dash, ADMIN_KEY)
    cookie = cookie_of(headers)
    _, other, _ = login(dash, ADMIN_KEY)  # a second session (another browser)
    assert request(dash, "GET", "/dashboard", headers={"cookie": cookie})[0] == 200
    status, headers, _ = request(dash, "POST", "/dashboard/logout", headers={"cookie": cookie})
    assert status == 303 and headers["location"] == "/dashboard/login"
    # the old cookie value, replayed (a copy taken before logout), no longer opens the page
    status, headers, _ = request(dash, "GET", "/dashboard", headers={"cookie": cookie})
    assert status == 303 and headers["location"] == "/dashboard/login"
    assert request(dash, "GET", "/dashboard", headers={"cookie": cookie_of(other)})[0] == 200


def test_wrong_keys_lock_the_login_out(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(dash_config(upstream.url, login_max_failures=3, login_lockout_s=1))
    for _ in range(3):
        assert login(gateway, "wrong")[0] == 401
    for key in ("wrong", ADMIN_KEY):  # locked: even the right key waits
        status, headers, body = login(gateway, key)
        assert status == 429 and "set-cookie" not in headers
        assert int(headers["retry-after"]) >= 1
        error = orjson.loads(body)["error"]
        assert error["code"] == "login_locked" and error["type"] == "rate_limit_error"
    time.sleep(1.2)
    status, headers, _ = login(gateway, ADMIN_KEY)
    assert status == 303 and headers["location"] == "/dashboard"
    # a success clears the count: two more mistakes do not lock again
    assert [login(gateway, "wrong")[0] for _ in range(2)] == [401, 401]
    assert login(gateway, ADMIN_KEY)[0] == 303


def test_login_limits_are_validated() -> None:
    from thrifty.config import parse_config
    from thrifty.errors import ConfigError

    for bad in ({"login_max_failures": 0}, {"login_lockout_s": 0}):
        with pytest.raises(ConfigError, match=r"dashboard\.login_"):
            parse_config(dash_config("http://127.0.0.1:9", **bad))
