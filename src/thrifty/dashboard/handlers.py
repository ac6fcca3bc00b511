"""The dashboard's HTTP handlers: login, logout, the page, its static files (the server
mounts them under ``/dashboard``; a :class:`ThriftyError` raised is an OpenAI-style error).

Login takes one of ``auth.admin_keys`` (checked in constant time by
:meth:`Runtime.is_admin`) and sets an HttpOnly, SameSite=Strict signed cookie scoped to
``/dashboard``; SameSite=Strict keeps other sites from riding the session, and a POST
whose ``Origin`` is another site is refused outright. Pages are ``no-store`` and carry a
strict Content-Security-Policy: scripts and styles only from ``/dashboard/static``.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from thrifty.dashboard.budget_panel import budget_section
from thrifty.dashboard.ledger_sql import LedgerSql, ledger_sql
from thrifty.dashboard.page import dashboard_page, login_page
from thrifty.dashboard.queries import DEFAULT_RANGE, RANGES, load_dashboard
from thrifty.dashboard.session import COOKIE, LoginThrottle, SessionSigner
from thrifty.dashboard.shadow_panel import shadow_section
from thrifty.errors import InvalidRequest, PayloadTooLarge, PermissionDenied, RateLimited
from thrifty.ledger.stores.base import LedgerStore
from thrifty.runtime import Runtime, key_id

log = logging.getLogger(__name__)

_LOGIN_BODY_LIMIT = 4096
_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with
    # the page's own form posts, which _same_origin must refuse (a sandboxed frame sends it)
    "referrer-policy": "same-origin",
}
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
STATIC_FILES = ("chart.umd.min.js", "dashboard.js", "dashboard.css")


def dashboard_handlers(runtime: Runtime) -> Dashboard | None:
    """The dashboard's handlers, or None when it is off or the ledger is no SQL store."""
    if not runtime.config.dashboard.enabled:
        return None
    store = getattr(runtime.ledger, "store", None)
    sql = ledger_sql(store) if store is not None else None
    if store is None or sql is None:
        log.warning("dashboard off: it reads a SQLite or PostgreSQL ledger, and this has none")
        return None
    return Dashboard(runtime, store, sql)


class Dashboard:
    """The handlers, holding the session signer and the static files read once."""

    def __init__(self, runtime: Runtime, store: LedgerStore, sql: LedgerSql) -> None:
        self.runtime = runtime
        self.store = store
        self.sql = sql
        config = runtime.config.dashboard
        self.sessions = SessionSigner(runtime.config.auth.admin_keys, config.session_ttl_s)
        self.secure_cookie = config.secure_cookie
        self.throttle = LoginThrottle(config.login_max_failures, config.login_lockout_s)
        folder = resources.files("thrifty.dashboard") / "static"
        self._static = {name: (folder / name).read_bytes() for name in STATIC_FILES}

    def _who(self, request: Request) -> str | None:
        return self.sessions.check(request.cookies.get(COOKIE))

    async def page(self, request: Request) -> Response:
        who = self._who(request)
        if who is None:
            return RedirectResponse("/dashboard/login", status_code=303, headers=_HEADERS)
        range_name = request.query_params.get("range", DEFAULT_RANGE)
        if range_name not in RANGES:
            raise InvalidRequest(
                f"range={range_name!r} is not one of {', '.join(RANGES)}", param="range"
            )
        data = await asyncio.to_thread(load_dashboard, self.store, self.sql, range_name)
        budget_html = await budget_section(self.runtime)
        shadow_html = await asyncio.to_thread(
            shadow_section, self.runtime, self.store, data["since"]
        )
        page = dashboard_page(data, who, budget_html, shadow_html)
        return HTMLResponse(page, headers=_HEADERS)

    async def login_form(self, request: Request) -> Response:
        if self._who(request) is not None:
            return RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        return HTMLResponse(login_page(locked=not self.sessions.enabled), headers=_HEADERS)

    async def login(self, request: Request) -> Response:
        _same_origin(request)
        client = _client(request) or "unknown"
        presented = await _form_key(request)
        wait = self.throttle.locked_for(client)
        if wait:
            log.warning("dashboard login locked out", extra={"client": client})
            raise RateLimited(
                f"too many wrong keys from this address; try again in {wait} s",
                code="login_locked", headers={"retry-after": str(wait)},
            )  # fmt: skip
        if not self.runtime.is_admin(presented):
            self.throttle.failed(client)
            log.warning("dashboard login refused", extra={"client": client})
            page = login_page("That is not an admin key.", locked=not self.sessions.enabled)
            return HTMLResponse(page, status_code=401, headers=_HEADERS)
        self.throttle.succeeded(client)
        who = key_id(presented or "")
        log.info("dashboard login", extra={"admin": who, "client": client})
        response = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        response.set_cookie(
            COOKIE, self.sessions.issue(who), max_age=self.sessions.ttl_s, path="/dashboard",
            httponly=True, samesite="strict", secure=self._secure(request),
        )  # fmt: skip
        return response

    async def logout(self, request: Request) -> Response:
        _same_origin(request)
        self.sessions.revoke(request.cookies.get(COOKIE))
        response = RedirectResponse("/dashboard/login", status_code=303, headers=_HEADERS)
        response.delete_cookie(
            COOKIE, path="/dashboard", httponly=True, samesite="strict",
            secure=self._secure(request),
        )  # fmt: skip
        return response

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = self._static.get(name)
        if body is None:
            raise InvalidRequest(
                f"GET /dashboard/static/{name}: no such file", status=404, code="not_found"
            )
        return Response(
            body,
            media_type=_STATIC_TYPES[Path(name).suffix],
            headers={"cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"},
        )

    def _secure(self, request: Request) -> bool:
        if self.secure_cookie is not None:
            return self.secure_cookie
        return request.url.scheme == "https"


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _same_origin(request: Request) -> None:
    """Refuse a form post sent from another site's page (login CSRF).

    ``Origin: null`` is refused too: browsers send it from sandboxed frames and after
    cross-site redirects, which is how a hostile page would hide where it posts from; a
    form on the dashboard's own page always sends its real origin.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # e.g. "http://[::1": not a URL at all
        netloc = None
    if netloc is None or netloc != request.headers.get("host"):
        raise PermissionDenied("cross-site form posts to the dashboard are refused")


async def _form_key(request: Request) -> str | None:
    """The ``key`` field of a urlencoded login form (no multipart parser needed)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidRequest(
            "log in with a form post (application/x-www-form-urlencoded)", code="invalid_body"
        )
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > _LOGIN_BODY_LIMIT:
            raise PayloadTooLarge("the login form is larger than 4 KB")
    try:
        fields = parse_qs(body.decode(), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the login form is not valid form data", code="invalid_body") from None
    values = fields.get("key") or [None]
    return values[0]
