"""One replica's connection to the shared Redis, and the breaker that bounds an outage.

Every Redis-backed store talks through a :class:`RedisLink`. When a command fails
(connection refused, timeout, Redis restarting), the breaker opens for
``redis.retry_after_s``: during that time stores do not even try, they fall back at once
(cache: miss; budgets: the configured fail-open/closed policy). So a dead Redis costs at
most one ``timeout_s`` per interval, never one per request, and the event loop never
stalls on it. The first failure of an outage is logged as a warning, the recovery as
info, and every failure is counted (``failures``), so operators see it in logs and stats.
Every breaker also reports to :data:`breaker_events`, which the Prometheus metrics
subscribe to (``thrifty_redis_fallbacks_total``, ``thrifty_redis_unavailable``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from thrifty.stores.config import RedisConfig

__all__ = [
    "COMPONENTS", "INSTALL_HINT", "Breaker", "BreakerEvents", "RedisLink", "breaker_events",
    "redis_errors",
]  # fmt: skip

log = logging.getLogger("thrifty.redis")

#: How long a command waits for a free pooled connection when all are busy.
POOL_WAIT_S = 5.0

INSTALL_HINT = "Redis support needs the redis extra: pip install 'thrifty[redis]'"


def _redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(INSTALL_HINT) from exc
    return redis


def redis_errors() -> tuple[type[BaseException], ...]:
    """What counts as "Redis is unavailable" (not a bug in our scripts)."""
    exceptions = _redis().exceptions
    return (exceptions.ConnectionError, exceptions.TimeoutError, OSError)


#: The Redis-backed parts, as breakers name themselves (and metrics label them).
COMPONENTS = ("cache", "semantic", "budgets", "rate_limits", "responses")

#: ``(component, event, breaker id)``; event is failed, skipped, down or up.
Listener = Callable[[str, str, int], None]


class BreakerEvents:
    """Fan-out of breaker events to whoever watches them (the metrics recorder).

    Listeners are bound methods held weakly, so a gateway that is gone stops counting
    without having to unsubscribe. Events are per process, like Prometheus metrics.
    """

    def __init__(self) -> None:
        self._listeners: list[weakref.WeakMethod[Listener]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(weakref.WeakMethod(listener))

    def emit(self, component: str, event: str, breaker: int) -> None:
        with self._lock:
            listeners = [ref() for ref in self._listeners]
            if None in listeners:
                self._listeners = [ref for ref in self._listeners if ref() is not None]
        for listener in listeners:
            if listener is not None:
                listener(component, event, breaker)


breaker_events = BreakerEvents()


class Breaker:
    """Counts failures and, after one, says "skip Redis" for ``retry_after_s`` seconds.

    ``component`` is one of :data:`COMPONENTS`: it names the breaker in logs and metrics.
    """

    def __init__(self, retry_after_s: float, component: str) -> None:
        self.retry_after_s = retry_after_s
        self.component = component
        self.failures = 0
        self.skipped = 0
        self._open_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        """Whether the last attempt failed (until one succeeds)."""
        return self._down

    def allow(self) -> bool:
        """False while open: the caller falls back without touching Redis."""
        if time.monotonic() >= self._open_until:
            return True
        with self._lock:
            self.skipped += 1
        breaker_events.emit(self.component, "skipped", id(self))
        return False

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self._open_until = time.monotonic() + self.retry_after_s
            first = not self._down
            self._down = True
        breaker_events.emit(self.component, "failed", id(self))
        if first:
            breaker_events.emit(self.component, "down", id(self))
            log.warning(
                "redis unavailable; falling back",
                extra={"component": self.component, "error": repr(exc),
                       "retry_after_s": self.retry_after_s},
            )  # fmt: skip

    def succeeded(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                breaker_events.emit(self.component, "up", id(self))
                log.info(
                    "redis reachable again",
                    extra={"component": self.component, "failures": self.failures},
                )


class RedisLink:
    """A sync and a lazily created asyncio client for one Redis, sharing no state.

    Owns its clients: :meth:`close` / :meth:`aclose` release them.

    >>> link = RedisLink(RedisConfig(url="redis://127.0.0.1:6379/0"))  # doctest: +SKIP
    >>> link.sync.ping()  # doctest: +SKIP
    """

    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self.prefix = config.prefix
        self._sync: Any = None
        self._async: Any = None

    def _options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.config.timeout_s,
            "socket_connect_timeout": self.config.timeout_s,
            "max_connections": self.config.max_connections,
            # a full pool waits for a free connection instead of failing the command
            "timeout": POOL_WAIT_S,
        }

    @property
    def sync(self) -> Any:
        """A thread-safe ``redis.Redis`` (blocking connection pool), created on first use."""
        if self._sync is None:
            redis = _redis()
            # one reconnect: a pooled socket may be stale after a Redis restart
            retry = redis.retry.Retry(redis.backoff.NoBackoff(), 1)
            pool = redis.BlockingConnectionPool.from_url(
                self.config.url, retry=retry, **self._options()
            )
            self._sync = redis.Redis.from_pool(pool)  # closing the client closes the pool
        return self._sync

    @property
    def aio(self) -> Any:
        """A ``redis.asyncio.Redis`` for the event loop it is first used on."""
        if self._async is None:
            from redis.asyncio import BlockingConnectionPool, Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            pool = BlockingConnectionPool.from_url(
                self.config.url, retry=Retry(NoBackoff(), 1), **self._options()
            )
            self._async = Redis.from_pool(pool)
        return self._async

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        self.close()
