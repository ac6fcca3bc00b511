"""Guards a gateway that web pages could reach: ``Host`` allow-list (DNS rebinding), no
cross-origin ``Origin``, JSON only on the model endpoints (issue 16, item 14).

A browser lets any page POST to ``http://127.0.0.1:8080`` (a "simple" request needs no
CORS preflight when its content type is form or text), and DNS rebinding lets a page
read the answers under its own name. With ``auth.enabled: false`` nothing else stops
such a page from spending through the gateway, so then:

* ``Host`` must name the gateway: ``server.allowed_hosts``, by default the loopback names
  and the bind host (a rebinding page's requests carry its own host name) → 400
  ``host_not_allowed``;
* an ``Origin`` header, when present, must be the gateway's own origin (the ``Host`` the
  request was sent to) or one of ``server.allowed_origins`` → 403 ``origin_not_allowed``;
* ``POST`` to the JSON endpoints needs ``Content-Type: application/json``, which a page
  cannot send cross-origin without a preflight the gateway never grants → 415
  ``unsupported_media_type``.

With auth on, a page cannot present a key (the browser adds no ``Authorization``), so only
an explicitly configured ``server.allowed_hosts`` / ``allowed_origins`` applies.
``/health`` is never guarded (probes call it by IP).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Scope

from thrifty.errors import InvalidRequest, PermissionDenied, ThriftyError

__all__ = ["LOOPBACK_HOSTS", "LocalGuard", "build_local_guard", "default_allowed_hosts"]

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
JSON_ROUTES = frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/batches",
                         "/v1/responses", "/v1/messages", "/v1/completions"})  # fmt: skip
_ANY_ADDRESS = ("0.0.0.0", "::", "")


def default_allowed_hosts(bind_host: str) -> tuple[str, ...]:
    """The loopback names plus the bind host (unless it is a wildcard address)."""
    extra = () if bind_host in _ANY_ADDRESS else (bind_host.strip("[]").lower(),)
    return (*LOOPBACK_HOSTS, *extra)


def _host_name(host: str) -> str:
    """``Host`` without its port: ``[::1]:8080`` → ``::1``, ``a.b:80`` → ``a.b``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class LocalGuard:
    """The three checks, in front of every route but ``/health``; built only when one
    applies (:func:`build_local_guard`)."""

    def __init__(
        self,
        *,
        hosts: Iterable[str] | None,
        origins: Iterable[str],
        check_origin: bool,
        require_json: bool,
    ) -> None:
        self._hosts = None if hosts is None else frozenset(h.lower() for h in hosts)
        self._origins = frozenset(o.rstrip("/").lower() for o in origins)
        self._check_origin = check_origin
        self._require_json = require_json

    def refusal(self, scope: Scope) -> ThriftyError | None:
        """Why the request is refused, or None."""
        if scope["path"] == "/health":
            return None
        host = _header(scope, b"host") or ""
        hosts = self._hosts
        if hosts is not None and "*" not in hosts and _host_name(host) not in hosts:
            return InvalidRequest(
                f"Host '{host[:100]}' is not one this gateway answers to; add it to "
                "server.allowed_hosts", code="host_not_allowed"
            )  # fmt: skip
        origin = _header(scope, b"origin")
        if origin is not None and (self._check_origin or self._origins):
            origin = origin.rstrip("/").lower()
            same = origin.split("://", 1)[-1] == host.lower()
            if not same and origin not in self._origins:
                return PermissionDenied(
                    f"cross-origin request from '{origin[:100]}' refused; add it to "
                    "server.allowed_origins", code="origin_not_allowed"
                )  # fmt: skip
        if self._require_json and scope["method"] == "POST" and scope["path"] in JSON_ROUTES:
            media = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                return InvalidRequest(
                    "Content-Type must be application/json", status=415,
                    code="unsupported_media_type"
                )  # fmt: skip
        return None


def build_local_guard(
    *, auth_enabled: bool, bind_host: str, allowed_hosts: list[str] | None,
    allowed_origins: list[str],
) -> LocalGuard | None:  # fmt: skip
    """The guard a gateway needs: all three checks with auth off; with auth on only what
    is configured explicitly; None when nothing applies."""
    if not auth_enabled:
        hosts = allowed_hosts if allowed_hosts is not None else default_allowed_hosts(bind_host)
        return LocalGuard(hosts=hosts, origins=allowed_origins, check_origin=True,
                          require_json=True)  # fmt: skip
    if allowed_hosts is None and not allowed_origins:
        return None
    return LocalGuard(hosts=allowed_hosts, origins=allowed_origins,
                      check_origin=bool(allowed_origins), require_json=False)  # fmt: skip
