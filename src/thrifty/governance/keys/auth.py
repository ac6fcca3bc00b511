"""Resolve a presented key to a :class:`Caller`: config keys first, then virtual keys."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from thrifty.errors import AuthenticationFailed
from thrifty.governance.config import AuthConfig
from thrifty.governance.keys.base import KeyStore, VirtualKey, key_id_of_digest
from thrifty.governance.keys.identity import ANONYMOUS, Caller

__all__ = ["KeyAuthenticator"]

_MISSING = "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
_WRONG = "Incorrect API key provided."


class KeyAuthenticator:
    """Config keys (``auth.keys``: every model, no overrides) and virtual keys (``store``).

    With auth off, a key is still resolved when it can be (for attribution, budgets and
    allowed models), and any other key is an anonymous caller known by its hash.
    """

    def __init__(self, auth: AuthConfig, store: KeyStore | None) -> None:
        self._enabled = auth.enabled
        self._config = [hashlib.sha256(k.encode()).digest() for k in auth.keys if k]
        self._admin = [hashlib.sha256(k.encode()).digest() for k in auth.admin_keys if k]
        self._store = store

    def authenticate(self, presented: str | None, *, enforce: bool = True) -> Caller:
        """The caller of ``presented``. Raises :class:`AuthenticationFailed` for a missing,
        unknown or revoked key when auth is on and ``enforce`` (the gateway); the library
        passes ``enforce=False`` (it holds the config already) but a revoked key still fails.
        """
        enforce = enforce and self._enabled
        digest, caller = self._without_store(presented, enforce)
        if caller is not None:
            return caller
        key = self._store.find(digest) if self._store is not None else None
        return self._with_key(key, digest, enforce)

    async def authenticate_async(self, presented: str | None, *, enforce: bool = True) -> Caller:
        """:meth:`authenticate` for the event loop: a store whose lookup blocks
        (``find_blocks``: PostgreSQL, a network round trip) is asked on a worker thread."""
        enforce = enforce and self._enabled
        digest, caller = self._without_store(presented, enforce)
        if caller is not None:
            return caller
        store = self._store
        if store is not None and store.find_blocks:
            key = await asyncio.to_thread(store.find, digest)
        else:
            key = store.find(digest) if store is not None else None
        return self._with_key(key, digest, enforce)

    def _without_store(self, presented: str | None, enforce: bool) -> tuple[bytes, Caller | None]:
        """The presented key's digest, and its caller when no store is needed."""
        if not presented:
            if enforce:
                raise AuthenticationFailed(_MISSING)
            return b"", ANONYMOUS
        digest = hashlib.sha256(presented.encode()).digest()
        if any(hmac.compare_digest(digest, known) for known in self._config):
            return digest, Caller(key_id=key_id_of_digest(digest), source="config")
        return digest, None

    def _with_key(self, key: VirtualKey | None, digest: bytes, enforce: bool) -> Caller:
        if key is not None:
            if not key.active:
                raise AuthenticationFailed("This API key has been revoked.", code="key_revoked")
            return key.caller()
        if enforce:
            raise AuthenticationFailed(_WRONG)
        return Caller(key_id=key_id_of_digest(digest), source="anonymous")

    def is_admin(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of ``auth.admin_keys`` (constant-time compare).

        No admin keys configured means no admin access at all, even with auth off.
        """
        if not presented or not self._admin:
            return False
        digest = hashlib.sha256(presented.encode()).digest()
        return any(hmac.compare_digest(digest, known) for known in self._admin)

    @property
    def store(self) -> KeyStore | None:
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
