"""The technique table: the one place that knows the techniques and the order of the stages.

Request path (outermost first) and the ``Context`` fields each stage reads/writes::

    governance  reads ctx.caller: allowed models, rate limits, budget reservation (the
                worst case the stages below declare); settles when the request ends
                (governance/stage.py). Absent without governance
    ledger      reads everything on the way back; writes one RequestRecord, its
                baseline and its savings by cause (pipeline/attribution.py)
    cache       exact, then semantic: may answer; stores answers on the way back
    compress    rewrites ctx.body (context only); sets ctx.removed_input (the
                baseline's, and compression's saving)
    route       rewrites ctx.model; notes its pick in techniques["route"]
    batch       window: waits for compatible requests, answers them from one packed
                call; sets each ctx's attempts (its share) and techniques["batch"]
                (batching/window.py)
    cascade     tries tiers, checks, escalates; notes them in techniques["cascade"]
    dispatch    calls ctx.model with retries and fallbacks; appends ctx.attempts

Governance (allowed models, rate limits, budget reservation; settlement when the request
ends) is the first stage when it can refuse anything (``governance/stage.py``); it
reserves the sum of what the other stages declare they may spend. Disabled techniques
are simply not in the list.

The pipeline, replay (its report order and overhead purposes), per-key overrides and
``thrifty keys`` all read :data:`TECHNIQUES`. Governance sits below this module, so the
names a key may switch are a constant there (``governance.keys.spec.OVERRIDABLE``) that
a test holds equal to the rows marked ``overridable``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from thrifty.config.schema import ThriftyConfig
from thrifty.errors import InvalidRequest
from thrifty.governance.admit import Admission
from thrifty.governance.keys.identity import Overrides
from thrifty.ledger.redact import Redactor
from thrifty.ledger.sink import LedgerSink
from thrifty.pipeline.chain import Pipeline
from thrifty.pipeline.context import Context
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.ledger_stage import LedgerStage
from thrifty.pipeline.stage import Stage
from thrifty.providers.base import Provider
from thrifty.registry import ModelRegistry
from thrifty.shadow.runner import ShadowRunner

__all__ = [
    "EVALUATION_PURPOSES",
    "OVERHEAD_PURPOSES",
    "REPORT_ORDER",
    "TECHNIQUES",
    "Parts",
    "Technique",
    "apply_overrides",
    "build_pipeline",
]


@dataclass(frozen=True, slots=True)
class Parts:
    """What a technique's builder may use besides the config."""

    registry: ModelRegistry
    dispatch: DispatchStage
    ephemeral: bool


@dataclass(frozen=True, slots=True)
class Technique:
    """One row: ``name`` is the config section and the key in savings and reports.

    ``overhead``: the attempt purposes whose cost is this technique's overhead (replay).
    ``overridable``: a virtual key may switch it on or off for itself.
    """

    name: str
    on: Callable[[ThriftyConfig], bool]
    build: Callable[[ThriftyConfig, Parts], list[Stage]]
    overhead: tuple[str, ...] = ()
    overridable: bool = False


# Builders import their technique only when it is on (a disabled technique costs nothing).


def _cache(config: ThriftyConfig, parts: Parts) -> list[Stage]:
    from thrifty.cache.build import build_cache_stages

    return build_cache_stages(
        config.cache, parts.registry, parts.dispatch, ephemeral=parts.ephemeral, redis=config.redis
    )


def _compression(config: ThriftyConfig, parts: Parts) -> list[Stage]:
    from thrifty.compression.build import build_compression

    return [build_compression(config.compression, parts.registry, parts.dispatch)]


def _routing(config: ThriftyConfig, parts: Parts) -> list[Stage]:
    from thrifty.routing.build import build_routing

    baseline = config.baseline_model or config.default_model
    return [build_routing(config.routing, parts.registry, baseline)]


def _batching(config: ThriftyConfig, parts: Parts) -> list[Stage]:
    from thrifty.batching.window import build_window

    return [build_window(config.batching, parts.registry)]


def _cascade(config: ThriftyConfig, parts: Parts) -> list[Stage]:
    from thrifty.cascade.build import build_cascade

    return [build_cascade(config.cascade, parts.registry, parts.dispatch)]


#: Every technique, in stage order (outermost first).
TECHNIQUES: tuple[Technique, ...] = (
    Technique(
        "cache", lambda c: c.cache.enabled, _cache, ("embed", "cache_verify"), overridable=True
    ),
    Technique("compression", lambda c: c.compression.enabled, _compression, ("summarise",)),
    Technique("routing", lambda c: c.routing.enabled, _routing, ("classify",), overridable=True),
    Technique("batching", lambda c: c.batching.window_on, _batching),
    Technique(
        "cascade", lambda c: c.cascade.enabled, _cascade, ("cascade", "judge"), overridable=True
    ),
)

#: The order reports list the techniques in (the first of equal bookings takes replay's
#: residual), as they always have; the same names as :data:`TECHNIQUES`.
REPORT_ORDER: tuple[str, ...] = ("routing", "cascade", "cache", "compression", "batching")

#: Which technique an attempt's ``purpose`` is overhead of (its cost counts against it).
OVERHEAD_PURPOSES: Mapping[str, str] = {
    purpose: technique.name for technique in TECHNIQUES for purpose in technique.overhead
}

#: Attempt purposes that are evaluation cost (shadow answers and their judges): billed on
#: their own ledger record, never any technique's overhead or saving (docs/shadow.md).
EVALUATION_PURPOSES: tuple[str, ...] = ("shadow",)


def build_pipeline(
    config: ThriftyConfig,
    registry: ModelRegistry,
    providers: Mapping[str, Provider],
    ledger: LedgerSink,
    *,
    ephemeral: bool = False,
    admission: Admission | None = None,
    shadow: ShadowRunner | None = None,
) -> Pipeline:
    """The stages of ``config``, outermost first; a disabled technique is not built.

    ``admission`` puts the governance stage in front (when it can refuse anything);
    ``shadow`` (the runtime's one shadow runner, when ``shadow`` is on) puts the shadow
    stage just inside the ledger's, where it sees the caller's request as sent."""
    dispatch = DispatchStage(registry, providers, config.retries)
    parts = Parts(registry, dispatch, ephemeral)
    stages: list[Stage] = [
        LedgerStage(
            ledger,
            registry,
            capture_bodies=config.ledger.capture_bodies,
            redactor=Redactor(config.ledger.redact),
        )
    ]
    if shadow is not None:
        from thrifty.shadow.stage import ShadowStage

        stages.append(ShadowStage(shadow))
    for technique in TECHNIQUES:
        if technique.on(config):
            stages.extend(technique.build(config, parts))
    _look_up_as_answered(stages)
    if admission is not None and admission.active:
        stages.insert(0, governance_stage(admission, registry, stages, config.retries.max_attempts))
    return Pipeline(stages, dispatch)


def _look_up_as_answered(stages: list[Stage]) -> None:
    """Tell the cache stages which models' stored answers a request may get: the model
    routing will pick (not the default model, for an ``auto`` request), and under a
    cascade the tiers it would climb to from there (``cache/common.py``)."""
    route = next((s.preview_model for s in stages if hasattr(s, "preview_model")), None)
    climb = next((s.serving_models for s in stages if hasattr(s, "serving_models")), None)
    if route is None and climb is None:
        return

    def lookup_models(ctx: Context) -> list[str]:
        model = route(ctx) if route is not None else ctx.model
        return climb(ctx, model) if climb is not None else [model]

    for stage in stages:
        if hasattr(stage, "lookup_models"):
            stage.lookup_models = lookup_models


def apply_overrides(config: ThriftyConfig, overrides: Overrides) -> ThriftyConfig:
    """``config`` with the techniques ``overrides`` names switched on or off, validated like
    the config file.

    Turning a technique on for a key needs its section filled in the config (tiers for a
    cascade, ``default_model`` for routing); otherwise this raises an
    :class:`InvalidRequest` that names the problem, when the key is created.
    """
    if overrides.empty:
        return config
    data = config.model_dump()
    for section, enabled in overrides.as_dict().items():
        data[section] = {**data[section], "enabled": enabled}
    try:
        return type(config).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRequest(
            f"overrides {overrides.as_dict()} do not fit this gateway's config: {problems}",
            param="overrides",
            code="invalid_overrides",
        ) from None


def governance_stage(
    admission: Admission, registry: ModelRegistry, stages: list[Stage], tries: int
) -> Stage:
    """Admission in front of ``stages``, reserving what they declare they may spend
    (``tries``: dispatch's tries per deployment, each of which may time out, billed)."""
    from thrifty.governance.stage import GovernanceStage
    from thrifty.pipeline.worst_case import WorstCase

    default = admission.governance.default_max_output_tokens
    return GovernanceStage(admission, WorstCase(registry, stages, default, tries))
