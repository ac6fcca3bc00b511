"""What ``thrifty tune`` searches for routing.

* ``threshold``: fits the quality predictor on the training rows, then tries thresholds
  from its cross-fitted curve (``sweep.py``);
* ``tradeoff``: the same predictor, a grid of λ chosen the same way (the stronger one:
  it spends the quality budget where a request saves the most);
* ``rules``: classifies the training prompts by task and, for each of a few quality
  levels, assigns each task the cheapest model whose recorded quality on that task's
  prompts reaches the level relative to the reference model.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from thrifty.recordings.candidates import Candidate
from thrifty.recordings.dataset import ReplayRecord
from thrifty.registry import ModelRegistry
from thrifty.routing.text import prompt_text
from thrifty.tokens import count_messages, count_text

RULE_LEVELS = (0.85, 0.9, 0.95, 1.0)
log = logging.getLogger(__name__)


def candidate_models(section: Mapping[str, Any], registry: ModelRegistry) -> list[str]:
    chat = [
        n
        for n in registry.names
        if (p := registry.get(n).price) is None or p.mode in (None, "chat")
    ]
    return list(section.get("candidates") or chat)


def routing_space(
    section: Mapping[str, Any],
    registry: ModelRegistry,
    baseline: str | None,
    train: Sequence[ReplayRecord],
    workdir: Path,
    target: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Candidate]:
    """Candidates for the raw ``routing:`` section; ``baseline`` is the config's
    ``baseline_model`` or else ``default_model`` (the reference when the section names none).

    For ``threshold`` and ``tradeoff`` the grid comes from the training rows' cross-fitted
    predictions: the estimated quality-retained curve (recorded grades, expected costs)
    is swept, and the grid holds the knob's two ends (always the reference; always the
    cheapest model) plus a fine band of values around where the curve crosses ``target``.
    """
    models = candidate_models(section, registry)
    reference = str(section.get("reference_model") or baseline)
    strategy = section.get("strategy", "rules")
    if strategy == "rules":
        return _rule_candidates(section, registry, reference, train, models)
    from thrifty.routing.predictor import QualityPredictor
    from thrifty.routing.prior import head_tiers, load_prior

    every = sorted({*models, reference})
    prior_setting = str(section.get("prior", "shipped"))
    prior = load_prior(prior_setting)
    predictor = QualityPredictor.fit(
        train,
        every,
        reference,
        use_tags=bool(section.get("use_tags", True)),
        encoder=usable_encoder(str(section.get("encoder", "none"))),
        prior=prior,
        prior_path=prior_setting,
        tiers=head_tiers([m for m in every if m != reference], reference, registry),
        # one cache for the whole tune: workdir is <tune work dir>/<fold>/routing
        embed_cache=workdir.parent.parent / "embeddings",
        progress=progress,
    )
    path = predictor.save(workdir / "predictor.npz")
    from thrifty.routing.sweep import ALWAYS_LAMBDA, knob_grid

    grid = knob_grid(predictor, train, models, reference, registry, strategy, target)
    knob = "tradeoff_lambda" if strategy == "tradeoff" else "threshold"
    label = "route λ={:.4g}" if strategy == "tradeoff" else "route ≥{:.4f}"
    out = [
        Candidate(label.format(v), {"routing": {"predictor": str(path), knob: v}}) for v in grid
    ]
    cheapest = ALWAYS_LAMBDA if strategy == "tradeoff" else 0.0
    every_pair = {*models, reference}
    for model in cheaper_models(models, reference, registry):
        if every_pair == {model, reference}:
            continue  # the knob's "always the cheapest" end is this already
        patch = {"predictor": str(path), knob: cheapest, "candidates": [model, reference]}
        out.append(Candidate(f"always {model}", {"routing": patch}))
    return out


def cheaper_models(models: Sequence[str], reference: str, registry: ModelRegistry) -> list[str]:
    """The candidates cheaper than the reference per token (input + output price).

    Each is offered to the tuner alone ("always this model"): mixed with the reference
    at a share (``routing.share``), that is random routing to it, the floor any learned
    policy must beat; with several cheap tiers the tuner picks the best mix among them."""
    ref = registry.get(reference).price
    if ref is None:
        return []
    ref_price = ref.input_per_token + ref.output_per_token
    out = []
    for name in models:
        price = registry.get(name).price
        if name == reference or price is None:
            continue
        if price.input_per_token + price.output_per_token < ref_price:
            out.append(name)
    return out


def usable_encoder(encoder: str) -> str:
    """``encoder``, or the static embedder when MiniLM's weights are not installed."""
    from thrifty.routing.encoders import available

    if available(encoder):
        return encoder
    log.warning("routing encoder %s is not installed; using the static embedder", encoder)
    return "static"


def _rule_candidates(
    section: Mapping[str, Any],
    registry: ModelRegistry,
    reference: str,
    train: Sequence[ReplayRecord],
    models: list[str],
) -> list[Candidate]:
    from thrifty.routing.build import task_classifier
    from thrifty.routing.config import RoutingConfig

    classifier = task_classifier(RoutingConfig.model_validate(dict(section)))
    by_task: dict[str, list[ReplayRecord]] = defaultdict(list)
    for record in train:
        by_task[classifier.classify(prompt_text(record.messages)).task].append(record)
    candidates = []
    for level in RULE_LEVELS:
        tasks = {}
        for task, records in sorted(by_task.items()):
            tasks[task] = [
                _cheapest_good_enough(records, models, reference, registry, level),
                reference,
            ]
        candidates.append(Candidate(f"rules at {level:.0%}", {"routing": {"tasks": tasks}}))
    return candidates


def _cheapest_good_enough(
    records: Sequence[ReplayRecord],
    models: list[str],
    reference: str,
    registry: ModelRegistry,
    level: float,
) -> str:
    """The model with the lowest recorded cost whose mean quality ≥ level × the reference's."""

    def stats(model: str) -> tuple[float, float] | None:
        price = registry.get(model).price
        quality = cost = 0.0
        for record in records:
            answer = record.answers.get(model)
            if answer is None or answer.quality is None or price is None:
                return None  # a model without a recorded answer for a prompt of this task
            output = answer.output_tokens or count_text(answer.text or "", model).tokens
            prompt = count_messages(list(record.messages), model).tokens
            quality += answer.quality
            cost += prompt * price.input_per_token + output * price.output_per_token
        return quality, cost

    ref = stats(reference)
    best, best_cost = reference, ref[1] if ref else float("inf")
    for model in models:
        result = stats(model)
        if result is None or ref is None:
            continue
        quality, cost = result
        if quality >= level * ref[0] and cost < best_cost:
            best, best_cost = model, cost
    return best
