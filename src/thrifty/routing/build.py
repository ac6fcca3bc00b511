"""Build the routing stage from its section (imports its learned parts only when used)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from thrifty.registry import ModelRegistry
from thrifty.routing.config import RoutingConfig
from thrifty.routing.policy import Router
from thrifty.routing.stage import RoutingStage

if TYPE_CHECKING:
    from thrifty.routing.predictor import QualityPredictor
    from thrifty.routing.tasks import LearnedTaskClassifier, RuleTaskClassifier


def reference_model(section: RoutingConfig, baseline: str | None) -> str:
    """The section's reference model, else ``baseline`` (the config's ``baseline_model``,
    else its ``default_model``)."""
    model = section.reference_model or baseline
    assert model is not None  # the schema requires default_model when routing is on
    return model


def prior_predictor(
    section: RoutingConfig, registry: ModelRegistry, reference: str
) -> QualityPredictor | None:
    """No tuned predictor: every candidate predicted by its price tier from the prior."""
    from thrifty.routing.predictor import QualityPredictor
    from thrifty.routing.prior import head_tiers, load_prior

    prior = load_prior(section.prior)
    if prior is None:
        return None
    from thrifty.routing.search import candidate_models

    models = [m for m in candidate_models(section.model_dump(), registry) if m != reference]
    tiers = head_tiers(models, reference, registry)
    return QualityPredictor.from_prior(prior, [*models, reference], reference, tiers, section.prior)


def task_classifier(section: RoutingConfig) -> RuleTaskClassifier | LearnedTaskClassifier:
    """The section's task classifier: its ``rules`` with its own ``labels`` added, read
    by the learned classifier when ``classifier: learned``. The tuner's rules search
    classifies its training prompts with this same one, so a user's labels are tuned."""
    from thrifty.routing.tasks import LearnedTaskClassifier, RuleTaskClassifier, with_labels

    labels = {name: rules.model_dump() for name, rules in section.labels.items()}
    rules = RuleTaskClassifier(with_labels(section.rules or None, labels))
    return LearnedTaskClassifier(rules=rules) if section.classifier == "learned" else rules


def build_routing(
    section: RoutingConfig, registry: ModelRegistry, baseline: str | None
) -> RoutingStage:
    classifier = task_classifier(section)
    predictor = None
    embed = None
    reference = reference_model(section, baseline)
    if section.strategy != "rules" and section.predictor:
        from thrifty.routing.predictor import QualityPredictor

        predictor = QualityPredictor.load(section.predictor)
    elif section.strategy != "rules":
        predictor = prior_predictor(section, registry, reference)
    if section.classifier == "learned":
        from thrifty.embeddings import get_embedder

        embed = get_embedder().embed_one
    router = Router(section, registry, reference, classifier, predictor, embed)
    return RoutingStage(section, registry, router)
