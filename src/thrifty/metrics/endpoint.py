"""``GET /metrics``'s handler: the recorder's registry (or every worker's) in the Prometheus
format. The server mounts it; :func:`attach_metrics` feeds the recorder from the ledger."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from thrifty.errors import AuthenticationFailed
from thrifty.ledger.sink import LedgerSink
from thrifty.ledger.writer import LedgerWriter
from thrifty.metrics.config import MetricsConfig
from thrifty.metrics.recorder import MetricsRecorder, multiprocess_dir
from thrifty.stores.redis import breaker_events

log = logging.getLogger(__name__)

IsAdmin = Callable[[str | None], bool]


def attach_metrics(
    config: MetricsConfig,
    ledger: LedgerSink,
    models: Iterable[str],
    redis_components: Iterable[str],
    is_admin: IsAdmin,
) -> MetricsEndpoint | None:
    """A recorder fed by ``ledger``, and its endpoint; None when off (or when the ledger is
    not the background writer, as in replay).

    ``redis_components``: what the config keeps in Redis (``stores.redis.COMPONENTS``), so
    their Redis series exist from the start; ``is_admin`` checks a bearer token.
    """
    if not config.enabled or not isinstance(ledger, LedgerWriter):
        return None
    recorder = MetricsRecorder(models)
    ledger.observers.append(recorder.observe)
    recorder.expect_redis(redis_components)
    breaker_events.subscribe(recorder.on_redis_event)
    return MetricsEndpoint(recorder, config.require_admin, is_admin)


class MetricsEndpoint:
    """The handler of ``GET /metrics``."""

    def __init__(self, recorder: MetricsRecorder, require_admin: bool, is_admin: IsAdmin) -> None:
        self.recorder = recorder
        self.require_admin = require_admin
        self._is_admin = is_admin

    def _registry(self) -> CollectorRegistry:
        path = multiprocess_dir()
        if path is None:
            return self.recorder.registry
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return registry

    async def handle(self, request: Request) -> Response:
        """Only a bearer token counts here (not ``api-key``): scrapers send that."""
        if self.require_admin:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not self._is_admin(token.strip()):
                raise AuthenticationFailed(
                    "/metrics needs one of auth.admin_keys as a bearer token."
                )
        return Response(generate_latest(self._registry()), media_type=CONTENT_TYPE_LATEST)
