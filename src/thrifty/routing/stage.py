"""The routing stage: pick the model for requests that leave the choice to Thrifty."""

from __future__ import annotations

from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.stage import CallNext
from thrifty.pipeline.worst_case import Spender
from thrifty.registry import ModelRegistry
from thrifty.routing.config import RoutingConfig
from thrifty.routing.policy import Router

ROUTE_HEADER = "route"  # x-thrifty-route: off | <model>


def applies(ctx: Context, applies_to: list[str]) -> bool:
    return ctx.auto or ctx.requested_model in applies_to


class RoutingStage(Spender):
    """Sets ``ctx.model`` and notes its pick in ``techniques["route"]``; the ledger
    credits routing with the answer's tokens at the baseline's price minus the same tokens
    at the routed model's, when the model it picked answered (``pipeline/attribution.py``)."""

    def __init__(self, config: RoutingConfig, registry: ModelRegistry, router: Router) -> None:
        self._config = config
        self._registry = registry
        self._router = router

    @property
    def router(self) -> Router:
        return self._router

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        control = ctx.controls.get(ROUTE_HEADER)
        if control == "off" or not applies(ctx, self._config.applies_to):
            return await call_next(ctx)
        ctx.model = self._decide(ctx, control)
        self._registry.get(ctx.model)  # a pick the registry cannot resolve fails here
        return await call_next(ctx)

    def preview_model(self, ctx: Context) -> str:
        """The model this stage will pick for ``ctx``, decided now and kept for the stage
        itself (the cache looks an answer up under it, before compression runs)."""
        control = ctx.controls.get(ROUTE_HEADER)
        if ctx.endpoint != CHAT or control == "off" or not applies(ctx, self._config.applies_to):
            return ctx.model
        return self._decide(ctx, control)

    def _decide(self, ctx: Context, control: str | None) -> str:
        """The routed model, once per request (noted in ``techniques["route"]``)."""
        noted = ctx.techniques.get("route")
        if noted is not None and "model" in noted:
            return str(noted["model"])
        if control:
            self._registry.get(control)  # an unknown model is the caller's 404
            ctx.techniques["route"] = {"model": control, "reason": "x-thrifty-route header"}
            return control
        decision = self._router.decide(ctx.body, ctx.tags)
        ctx.techniques["route"] = decision.as_dict()
        return decision.model

    def answer_models(self, ctx: Context, models: set[str]) -> set[str]:
        """The models routing may pick: the header's, else every candidate (the
        configured ones, or every chat model) and every task's models."""
        control = ctx.controls.get(ROUTE_HEADER)
        routes = ctx.endpoint == CHAT and applies(ctx, self._config.applies_to)
        if not routes or control == "off":
            return models
        if control:
            return {control}
        registry = self._registry
        candidates = set(self._config.candidates) or {
            n
            for n in registry.names
            if (p := registry.get(n).price) is None or p.mode in (None, "chat")
        }
        return candidates | {m for names in self._config.tasks.values() for m in names}

    def header_models(self, ctx: Context) -> set[str]:
        """``x-thrifty-route: <model>`` (an empty header is no choice, as above)."""
        control = ctx.controls.get(ROUTE_HEADER) or None
        return set() if control in (None, "off") else {control}
