"""Budget alerts: a webhook POST when a budget's settled spend passes a threshold.

Checked after each settlement, in the background (the request never waits for it).
Each (budget window, threshold) is claimed in the budget store first, so it is sent once
per window even with several workers or replicas. A failed POST is logged, not retried:
the claim is already taken (at most once, never a storm).

The body::

    {"event": "budget.threshold", "scope": "team:research", "period": "month",
     "window": "2026-11", "threshold": 0.8, "limit_usd": 200.0, "spent_usd": 161.2,
     "reserved_usd": 3.1, "resets_at": 1764547200.0, "ts": 1764350000.0}
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from thrifty.governance.budgets.base import BucketUsage, BudgetBucket, BudgetStore
from thrifty.governance.config import AlertsConfig

__all__ = ["BudgetAlerts", "alert_body"]

log = logging.getLogger(__name__)
_EPSILON = 1e-9


def alert_body(usage: BucketUsage, threshold: float) -> dict[str, Any]:
    bucket = usage.bucket
    return {
        "event": "budget.threshold",
        "scope": bucket.scope,
        "period": bucket.period,
        "window": bucket.window,
        "threshold": threshold,
        "limit_usd": bucket.limit_usd,
        "spent_usd": usage.spent_usd,
        "reserved_usd": usage.reserved_usd,
        "resets_at": bucket.resets_at,
        "ts": time.time(),
    }


class BudgetAlerts:
    """Watches buckets after settlement and posts each passed threshold once."""

    def __init__(self, config: AlertsConfig, store: BudgetStore) -> None:
        assert config.webhook_url is not None  # built only when a webhook is configured
        self._url = config.webhook_url
        self._config = config
        self._thresholds = sorted(set(config.thresholds))
        self._store = store
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def watch(self, buckets: tuple[BudgetBucket, ...]) -> None:
        """Check ``buckets`` in the background."""
        if not buckets:
            return
        task = asyncio.get_running_loop().create_task(self._check(buckets))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, buckets: tuple[BudgetBucket, ...]) -> None:
        try:
            for usage in await self._store.usage(buckets):
                limit = usage.bucket.limit_usd
                used = usage.spent_usd / limit if limit > 0 else 1.0
                for threshold in self._thresholds:
                    if used + _EPSILON >= threshold and await self._store.claim_alert(
                        usage.bucket, threshold
                    ):
                        await self._post(alert_body(usage, threshold))
        except Exception:
            log.exception("budget alert check failed")

    async def _post(self, body: dict[str, Any]) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.post(
                self._url, json=body, headers=self._config.headers
            ) as response:
                if response.status >= 300:
                    log.warning(
                        "budget alert webhook refused",
                        extra={"status": response.status, "scope": body["scope"]},
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "budget alert webhook failed", extra={"error": repr(exc), "scope": body["scope"]}
            )
        else:
            log.info(
                "budget alert sent",
                extra={"scope": body["scope"], "threshold": body["threshold"]},
            )

    async def aclose(self) -> None:
        """Let pending alerts finish (bounded by the webhook timeout), then close."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._config.timeout_s + 1)
        if self._session is not None:
            await self._session.close()
