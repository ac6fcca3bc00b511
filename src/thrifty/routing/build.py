"""Build the routing stage from config (imports its learned parts only when used)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from thrifty.registry import ModelRegistry
from thrifty.routing.policy import Router
from thrifty.routing.stage import RoutingStage

if TYPE_CHECKING:
    from thrifty.config.schema import ThriftyConfig


def reference_model(config: ThriftyConfig) -> str:
    model = config.routing.reference_model or config.baseline_model or config.default_model
    assert model is not None  # the schema requires default_model when routing is on
    return model


def build_routing(config: ThriftyConfig, registry: ModelRegistry) -> RoutingStage:
    from thrifty.routing.tasks import LearnedTaskClassifier, RuleTaskClassifier

    section = config.routing
    classifier = (
        LearnedTaskClassifier()
        if section.classifier == "learned"
        else RuleTaskClassifier(section.rules or None)
    )
    predictor = None
    embed = None
    if section.strategy != "rules" and section.predictor:
        from thrifty.routing.predictor import QualityPredictor

        predictor = QualityPredictor.load(section.predictor)
    if predictor is not None or section.classifier == "learned":
        from thrifty.embeddings import get_embedder

        embed = get_embedder().embed_one
    router = Router(section, registry, reference_model(config), classifier, predictor, embed)
    return RoutingStage(section, registry, router)
