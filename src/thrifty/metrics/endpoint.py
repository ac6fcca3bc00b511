"""``GET /metrics``: the recorder's registry (or every worker's) in the Prometheus format."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thrifty.errors import AuthenticationFailed
from thrifty.ledger.writer import LedgerWriter
from thrifty.metrics.config import MetricsConfig
from thrifty.metrics.recorder import MetricsRecorder, multiprocess_dir
from thrifty.runtime import Runtime
from thrifty.server.responses import error_response
from thrifty.stores.redis import breaker_events

if TYPE_CHECKING:
    from thrifty.config.schema import ThriftyConfig

log = logging.getLogger(__name__)


def metrics_routes(runtime: Runtime) -> list[Route]:
    """``GET /metrics`` when metrics are on; nothing otherwise."""
    endpoint = attach_metrics(runtime)
    return [] if endpoint is None else [Route("/metrics", endpoint.handle, methods=["GET"])]


def attach_metrics(runtime: Runtime) -> MetricsEndpoint | None:
    """A recorder fed by the runtime's ledger writer, and its endpoint; None when off
    (or when the ledger is not the background writer, as in replay)."""
    config: MetricsConfig = runtime.config.metrics
    if not config.enabled or not isinstance(runtime.ledger, LedgerWriter):
        return None
    recorder = MetricsRecorder(runtime.registry.names)
    runtime.ledger.observers.append(recorder.observe)
    recorder.expect_redis(redis_components(runtime.config))
    breaker_events.subscribe(recorder.on_redis_event)
    return MetricsEndpoint(runtime, recorder, config.require_admin)


def redis_components(config: ThriftyConfig) -> list[str]:
    """The components this config keeps in Redis (see ``scaleout.redis_link.COMPONENTS``)."""
    components = []
    cache = config.cache
    if cache.enabled and cache.store == "redis":
        components += ["cache"] if cache.exact.enabled else []
        components += ["semantic"] if cache.semantic.enabled else []
    if config.governance.store == "redis" and config.governance.needs_store:
        components += ["budgets", "rate_limits"]
    return components


class MetricsEndpoint:
    """The Starlette handler of ``GET /metrics``."""

    def __init__(self, runtime: Runtime, recorder: MetricsRecorder, require_admin: bool) -> None:
        self.runtime = runtime
        self.recorder = recorder
        self.require_admin = require_admin

    def _registry(self) -> CollectorRegistry:
        path = multiprocess_dir()
        if path is None:
            return self.recorder.registry
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return registry

    async def handle(self, request: Request) -> Response:
        if self.require_admin:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not self.runtime.is_admin(token.strip()):
                return error_response(
                    AuthenticationFailed("/metrics needs one of auth.admin_keys as a bearer token.")
                )
        return Response(generate_latest(self._registry()), media_type=CONTENT_TYPE_LATEST)
