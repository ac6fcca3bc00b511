"""The dashboard's login session: a signed, expiring cookie, revoked on logout.

The signing key is derived from the configured admin keys, so every worker of a
multi-process gateway accepts the same cookie without sharing anything, and removing an
admin key from the config ends every session at the next restart. The cookie carries
only an expiry, the logged-in key's id (a hash prefix, never the key) and a session id.

Logout adds the session id to a revocation set, kept until the cookie would have expired
anyway, so a copied cookie stops working at once. The set lives in the process: with
several workers a logout ends the session in the worker that served it, and the others
accept the cookie until it expires (docs/hardening.md, "Dashboard sessions"); a restart
clears the set. :class:`LoginThrottle` locks a client address out after wrong keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Iterable

COOKIE = "thrifty_session"
_CONTEXT = b"thrifty-dashboard-session-v1\0"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks session cookie values for one set of admin keys."""

    def __init__(self, admin_keys: Iterable[str], ttl_s: int) -> None:
        keys = sorted(k for k in admin_keys if k)
        self.enabled = bool(keys)
        self._secret = hashlib.sha256(_CONTEXT + b"\0".join(k.encode() for k in keys)).digest()
        self.ttl_s = ttl_s
        self._revoked: dict[str, int] = {}  # session id -> its expiry

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(self, who: str, now: float | None = None) -> str:
        """A cookie value for ``who`` (a key id), valid for ``ttl_s``."""
        expires = int((time.time() if now is None else now) + self.ttl_s)
        payload = f"{expires}:{who}:{secrets.token_urlsafe(12)}".encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def _session(self, value: str | None, now: float | None) -> tuple[str, str, int] | None:
        """``(who, session id, expiry)`` of a validly signed, unexpired cookie value."""
        if not self.enabled or not value or value.count(".") != 1:
            return None
        encoded, signature = value.split(".")
        try:
            payload, presented = _unb64(encoded), _unb64(signature)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(self._sign(payload), presented):
            return None
        try:
            expires, who, session_id = payload.decode().split(":", 2)
            expiry = int(expires)
        except ValueError:
            return None
        if expiry <= (time.time() if now is None else now):
            return None
        return who, session_id, expiry

    def check(self, value: str | None, now: float | None = None) -> str | None:
        """The key id of a valid, unexpired, not revoked cookie value; None otherwise."""
        session = self._session(value, now)
        if session is None or session[1] in self._revoked:
            return None
        return session[0]

    def revoke(self, value: str | None, now: float | None = None) -> None:
        """End the session of cookie ``value`` (logout). Expired revocations are dropped,
        so the set holds at most the sessions that logged out within ``ttl_s``."""
        now = time.time() if now is None else now
        session = self._session(value, now)
        if session is None:
            return
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
        self._revoked[session[1]] = session[2]


class LoginThrottle:
    """Counts wrong keys per client address; ``max_failures`` in a row lock it out for
    ``lockout_s``. At most ``max_clients`` addresses are tracked (the oldest are dropped),
    so a flood of addresses cannot grow it without bound."""

    def __init__(self, max_failures: int, lockout_s: int, max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._max_clients = max_clients
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (count, last failure)

    def locked_for(self, client: str, now: float | None = None) -> int:
        """Seconds until ``client`` may try again; 0 when it may now."""
        count, last = self._failures.get(client, (0, 0.0))
        if count < self.max_failures:
            return 0
        left = last + self.lockout_s - (time.monotonic() if now is None else now)
        if left <= 0:
            del self._failures[client]
            return 0
        return max(1, math.ceil(left))

    def failed(self, client: str, now: float | None = None) -> None:
        count, _ = self._failures.pop(client, (0, 0.0))
        if len(self._failures) >= self._max_clients:
            del self._failures[next(iter(self._failures))]
        self._failures[client] = (count + 1, time.monotonic() if now is None else now)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
