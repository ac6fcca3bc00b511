"""The dashboard's login session: a signed, expiring cookie; no server-side state.

The signing key is derived from the configured admin keys, so every worker of a
multi-process gateway accepts the same cookie without sharing anything, and removing an
admin key from the config ends every session at the next restart. The cookie carries
only an expiry, the logged-in key's id (a hash prefix, never the key) and a nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(self, who: str, now: float | None = None) -> str:
        """A cookie value for ``who`` (a key id), valid for ``ttl_s``."""
        expires = int((time.time() if now is None else now) + self.ttl_s)
        payload = f"{expires}:{who}:{secrets.token_urlsafe(12)}".encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def check(self, value: str | None, now: float | None = None) -> str | None:
        """The key id of a valid, unexpired cookie value; None for anything else."""
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
            expires, who, _nonce = payload.decode().split(":", 2)
            expired = int(expires) <= (time.time() if now is None else now)
        except ValueError:
            return None
        return None if expired else who
