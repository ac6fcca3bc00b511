"""The one place that knows the order of the stages.

Request path (outermost first) and the ``Context`` fields each stage reads/writes::

    governance  reads ctx.caller: allowed models, rate limits, budget reservation (the
                worst case the stages below declare); settles when the request ends
                (governance/stage.py). Absent without governance
    ledger      reads everything on the way back; writes one RequestRecord
    cache       exact, then semantic: may answer; stores answers on the way back
    compress    rewrites ctx.body (context only); books savings["compression"],
                sets ctx.removed_input for the baseline
    route       rewrites ctx.model; books savings["routing"]
    batch       window: waits for compatible requests, answers them from one packed
                call; sets each ctx's attempts (its share), techniques["batch"],
                savings["batching"] (batching/window.py)
    cascade     tries tiers, checks, escalates; books savings["cascade"]
    dispatch    calls ctx.model with retries and fallbacks; appends ctx.attempts

Disabled techniques are simply not in the list.
"""

from __future__ import annotations

from collections.abc import Mapping

from thrifty.config.schema import ThriftyConfig
from thrifty.governance.admit import Admission
from thrifty.ledger.sink import LedgerSink
from thrifty.pipeline.chain import Pipeline
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.ledger_stage import LedgerStage
from thrifty.pipeline.stage import Stage
from thrifty.providers.base import Provider
from thrifty.registry import ModelRegistry


def build_pipeline(
    config: ThriftyConfig,
    registry: ModelRegistry,
    providers: Mapping[str, Provider],
    ledger: LedgerSink,
    *,
    ephemeral: bool = False,
    admission: Admission | None = None,
) -> Pipeline:
    """The stages of ``config``, outermost first; a disabled technique is not built.

    ``admission`` puts the governance stage in front (when it can refuse anything)."""
    dispatch = DispatchStage(registry, providers, config.retries)
    stages: list[Stage] = [
        LedgerStage(ledger, registry, capture_bodies=config.ledger.capture_bodies)
    ]
    if config.cache.enabled:
        from thrifty.cache.build import build_cache_stages

        stages.extend(
            build_cache_stages(
                config.cache, registry, dispatch, ephemeral=ephemeral, redis=config.redis
            )
        )
    if config.compression.enabled:
        from thrifty.compression.build import build_compression

        stages.append(build_compression(config.compression, registry, dispatch))
    if config.routing.enabled:
        from thrifty.routing.build import build_routing

        stages.append(build_routing(config, registry))
    if config.batching.window_on:
        from thrifty.batching.window import build_window

        stages.append(build_window(config.batching, registry))
    if config.cascade.enabled:
        from thrifty.cascade.build import build_cascade

        stages.append(build_cascade(config, registry, dispatch))
    if admission is not None and admission.active:
        stages.insert(0, governance_stage(admission, registry, stages))
    return Pipeline(stages, dispatch)


def governance_stage(admission: Admission, registry: ModelRegistry, stages: list[Stage]) -> Stage:
    """Admission in front of ``stages``, reserving what they declare they may spend."""
    from thrifty.governance.stage import GovernanceStage
    from thrifty.pipeline.worst_case import WorstCase

    default = admission.governance.default_max_output_tokens
    return GovernanceStage(admission, WorstCase(registry, stages, default))
