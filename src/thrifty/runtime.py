"""Owns everything a running Thrifty needs: providers, registry, ledger, pipeline.

Built from a validated config by the gateway (in its lifespan) and by the library (on
first use); ``aclose`` releases connections and flushes the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from thrifty.config.schema import ThriftyConfig
from thrifty.errors import AuthenticationFailed
from thrifty.ledger.sink import LedgerSink
from thrifty.ledger.stores.select import open_ledger_store
from thrifty.ledger.writer import LedgerWriter
from thrifty.logs import config_secrets, register_secrets
from thrifty.pipeline.build import build_pipeline
from thrifty.pipeline.context import Context
from thrifty.pipeline.requests import build_context
from thrifty.providers.base import Provider
from thrifty.providers.openai_http import OpenAIHTTPProvider
from thrifty.registry import ModelRegistry


def key_id(key: str) -> str:
    """A stable, non-reversible id for a caller key, safe to store and show."""
    return _key_id_of(hashlib.sha256(key.encode()).digest())


def _key_id_of(digest: bytes) -> str:
    return "key-" + digest.hex()[:12]


class Runtime:
    """One process's Thrifty. ``providers`` and ``ledger`` default to the configured HTTP
    upstreams and the configured ledger store; replay passes recorded-answer providers and a
    collecting sink instead, and everything else runs unchanged."""

    def __init__(
        self,
        config: ThriftyConfig,
        ledger_path: str | Path | None = None,
        *,
        providers: Mapping[str, Provider] | None = None,
        ledger: LedgerSink | None = None,
        ephemeral: bool = False,
    ) -> None:
        self.config = config
        register_secrets(config_secrets(config))  # never in a log line, whatever logs it
        self.registry = ModelRegistry.from_config(config)
        self.providers: dict[str, Provider] = (
            dict(providers)
            if providers is not None
            else {
                name: OpenAIHTTPProvider(name, provider)
                for name, provider in config.providers.items()
            }
        )
        self.ledger: LedgerSink = ledger or LedgerWriter(
            open_ledger_store(config.ledger, ledger_path),
            flush_interval=config.ledger.flush_interval_ms / 1000,
        )
        self._key_hashes = [hashlib.sha256(k.encode()).digest() for k in config.auth.keys if k]
        self._admin_hashes = [
            hashlib.sha256(k.encode()).digest() for k in config.auth.admin_keys if k
        ]
        self.pipeline = build_pipeline(
            config, self.registry, self.providers, self.ledger, ephemeral=ephemeral
        )

    def authenticate(self, presented: str | None) -> str | None:
        """Check a caller's key; return its key id (None when auth is off)."""
        if not self.config.auth.enabled:
            return key_id(presented) if presented else None
        if not presented:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
            )
        digest = hashlib.sha256(presented.encode()).digest()
        if not any(hmac.compare_digest(digest, known) for known in self._key_hashes):
            raise AuthenticationFailed("Incorrect API key provided.")
        return _key_id_of(digest)  # the hash already made: not hashed twice

    def is_admin(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of ``auth.admin_keys`` (constant-time compare).

        No admin keys configured means no admin access at all, even with auth off.
        """
        if not presented or not self._admin_hashes:
            return False
        digest = hashlib.sha256(presented.encode()).digest()
        return any(hmac.compare_digest(digest, known) for known in self._admin_hashes)

    def new_context(
        self,
        endpoint: str,
        body: Any,
        headers: dict[str, str],
        key_id: str | None,
        request_id: str | None = None,
    ) -> Context:
        """Check a request against this config; unknown models fail before any work."""
        ctx = build_context(
            endpoint,
            body,
            headers,
            default_model=self.config.default_model,
            baseline_model=self.config.baseline_model,
            key_id=key_id,
            request_id=request_id,
        )
        self.registry.get(ctx.model)
        return ctx

    async def aclose(self) -> None:
        self.pipeline.close()
        for provider in self.providers.values():
            await provider.close()
        self.ledger.close()
