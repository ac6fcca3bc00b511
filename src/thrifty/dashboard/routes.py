"""The dashboard's HTTP handlers: login, logout, the page, its static files.

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
from starlette.routing import Route

from thrifty.dashboard.budget_panel import budget_usage, render_budget_section
from thrifty.dashboard.page import dashboard_page, login_page
from thrifty.dashboard.queries import DEFAULT_RANGE, RANGES, load_dashboard
from thrifty.dashboard.session import COOKIE, SessionSigner
from thrifty.errors import InvalidRequest, PayloadTooLarge, PermissionDenied, ThriftyError
from thrifty.ledger.stores.base import LedgerStore
from thrifty.runtime import Runtime, key_id
from thrifty.server.responses import error_response

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
    "referrer-policy": "no-referrer",
}
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
STATIC_FILES = ("chart.umd.min.js", "dashboard.js", "dashboard.css")


def dashboard_routes(runtime: Runtime) -> list[Route]:
    """The dashboard's routes, or none when it is off or the ledger is not SQLite."""
    if not runtime.config.dashboard.enabled:
        return []
    store = getattr(runtime.ledger, "store", None)
    path = getattr(store, "path", None)
    if store is None or path is None:
        log.warning("dashboard off: it reads a SQLite ledger, and this runtime has none")
        return []
    dash = Dashboard(runtime, store, Path(path))
    return [
        Route("/dashboard", dash.page, methods=["GET"]),
        Route("/dashboard/login", dash.login_form, methods=["GET"]),
        Route("/dashboard/login", dash.login, methods=["POST"]),
        Route("/dashboard/logout", dash.logout, methods=["POST"]),
        Route("/dashboard/static/{name}", dash.static, methods=["GET"]),
    ]


class Dashboard:
    """The handlers, holding the session signer and the static files read once."""

    def __init__(self, runtime: Runtime, store: LedgerStore, path: Path) -> None:
        self.runtime = runtime
        self.store = store
        self.path = path
        config = runtime.config.dashboard
        self.sessions = SessionSigner(runtime.config.auth.admin_keys, config.session_ttl_s)
        self.secure_cookie = config.secure_cookie
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
            return error_response(InvalidRequest(
                f"range={range_name!r} is not one of {', '.join(RANGES)}", param="range"
            ))  # fmt: skip
        data = await asyncio.to_thread(load_dashboard, self.store, self.path, range_name)
        usages = await budget_usage(self.runtime)
        budget_html = None if usages is None else render_budget_section(usages)
        return HTMLResponse(dashboard_page(data, who, budget_html), headers=_HEADERS)

    async def login_form(self, request: Request) -> Response:
        if self._who(request) is not None:
            return RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        return HTMLResponse(login_page(locked=not self.sessions.enabled), headers=_HEADERS)

    async def login(self, request: Request) -> Response:
        try:
            _same_origin(request)
            presented = await _form_key(request)
        except ThriftyError as exc:
            return error_response(exc)
        if not self.runtime.is_admin(presented):
            log.warning("dashboard login refused", extra={"client": _client(request)})
            page = login_page("That is not an admin key.", locked=not self.sessions.enabled)
            return HTMLResponse(page, status_code=401, headers=_HEADERS)
        who = key_id(presented or "")
        log.info("dashboard login", extra={"admin": who, "client": _client(request)})
        response = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        response.set_cookie(
            COOKIE, self.sessions.issue(who), max_age=self.sessions.ttl_s, path="/dashboard",
            httponly=True, samesite="strict", secure=self._secure(request),
        )  # fmt: skip
        return response

    async def logout(self, request: Request) -> Response:
        try:
            _same_origin(request)
        except ThriftyError as exc:
            return error_response(exc)
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
            return error_response(InvalidRequest(
                f"GET /dashboard/static/{name}: no such file", status=404, code="not_found"
            ))  # fmt: skip
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
    """Refuse a form post sent from another site's page (login CSRF)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return
    if urlsplit(origin).netloc != request.headers.get("host"):
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
