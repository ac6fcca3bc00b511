"""Each feature's handler object, built from the runtime with the parts it needs.

The features below the runtime in the layers (batch jobs, metrics, the keys admin API)
take explicit dependencies: sections, the registry, the ledger, admission's parts. Only
this module reaches into the :class:`Runtime` for them. A feature that is off is None,
and the server mounts none of its routes.
"""

from __future__ import annotations

from dataclasses import dataclass

from thrifty.batching.handlers import JobHandlers
from thrifty.batching.jobs import BatchJobs
from thrifty.config.schema import ThriftyConfig
from thrifty.dashboard.handlers import Dashboard, dashboard_handlers
from thrifty.governance.jobs import JobAdmission
from thrifty.governance.keys.admin import KeysAdmin
from thrifty.metrics.endpoint import MetricsEndpoint, attach_metrics
from thrifty.pipeline.context import CHAT, EMBEDDINGS
from thrifty.runtime import Runtime
from thrifty.server.anthropic_api import MessagesDialect
from thrifty.server.completions_api import CompletionsDialect
from thrifty.server.info import InfoHandlers
from thrifty.server.model_endpoint import ModelEndpoint
from thrifty.server.responses_api import ResponsesDialect
from thrifty.server.responses_select import open_response_store
from thrifty.server.responses_store import ResponseStore


@dataclass(frozen=True, slots=True)
class Features:
    """The handler objects the route table names (``RouteEntry.feature``)."""

    chat: ModelEndpoint
    embeddings: ModelEndpoint
    responses: ModelEndpoint
    """The chat dialects (``server/dialect.py``): OpenAI Responses, Anthropic Messages,
    legacy completions."""
    messages: ModelEndpoint
    completions: ModelEndpoint
    gateway: InfoHandlers
    jobs: JobHandlers | None
    metrics: MetricsEndpoint | None
    dashboard: Dashboard | None
    admin: KeysAdmin
    response_store: ResponseStore
    """The Responses API's stored responses (``responses_select.py``), closed on shutdown."""

    def close(self) -> None:
        self.response_store.close()


def build_features(runtime: Runtime) -> Features:
    """Every feature's handlers for ``runtime`` (in this order: the job store opens, then
    the metrics recorder joins the ledger writer's observers, as before the split)."""
    responses = responses_dialect(runtime.config)
    return Features(
        chat=ModelEndpoint(runtime, CHAT),
        embeddings=ModelEndpoint(runtime, EMBEDDINGS),
        responses=ModelEndpoint(runtime, CHAT, responses),
        messages=ModelEndpoint(runtime, CHAT, MessagesDialect()),
        completions=ModelEndpoint(runtime, CHAT, CompletionsDialect()),
        gateway=InfoHandlers(runtime),
        jobs=job_handlers(runtime),
        metrics=attach_metrics(
            runtime.config.metrics,
            runtime.ledger,
            runtime.registry.names,
            redis_components(runtime.config),
            runtime.is_admin,
        ),
        dashboard=dashboard_handlers(runtime),
        admin=keys_admin(runtime),
        response_store=responses.store,
    )


def responses_dialect(config: ThriftyConfig) -> ResponsesDialect:
    """The Responses API, its stored responses where the config shares state
    (``server/responses_select.py``)."""
    return ResponsesDialect(open_response_store(config, redis_in_use=bool(_redis_features(config))))


def job_handlers(runtime: Runtime) -> JobHandlers | None:
    """``/v1/files`` + ``/v1/batches``, or None when batch jobs are off."""
    config = runtime.config
    if not config.batching.jobs_on:
        return None
    admission = JobAdmission(runtime.admission)
    jobs = BatchJobs(config, runtime.registry, runtime.ledger, admission=admission)
    return JobHandlers(jobs, runtime.authenticate_async, config.batching.jobs.max_file_bytes)


def keys_admin(runtime: Runtime) -> KeysAdmin:
    """``/admin/keys`` and ``/admin/budgets`` (always mounted: they say why they are off)."""
    return KeysAdmin(
        is_admin=runtime.is_admin,
        admin_api_on=bool(runtime.config.auth.admin_keys),
        store=runtime.admission.auth.store,
        registry=runtime.registry,
        check_overrides=runtime.check_overrides,
        budget_usage=runtime.admission.budget_usage,
    )


def redis_components(config: ThriftyConfig) -> list[str]:
    """The components this config keeps in Redis (see ``stores.redis.COMPONENTS``):
    stored responses go there whenever another feature does."""
    components = _redis_features(config)
    return [*components, "responses"] if components else []


def _redis_features(config: ThriftyConfig) -> list[str]:
    components = []
    cache = config.cache
    if cache.enabled and cache.store == "redis":
        components += ["cache"] if cache.exact.enabled else []
        components += ["semantic"] if cache.semantic.enabled else []
    if config.governance.store == "redis" and config.governance.needs_store:
        components += ["budgets", "rate_limits"]
    return components
