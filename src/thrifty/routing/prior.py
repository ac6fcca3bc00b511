"""The routing prior: what public graded data says about "a cheaper model does as well".

A user with no labelled traffic has no predictor; their models are also not the ones in
public data. What carries over is the *tier*: how much cheaper a model is than the
reference (``tier_of``: the cost ratio of a typical request, 1,000 tokens in and 250
out, in the buckets of ``TIER_EDGES``). The prior is a :class:`QualityPredictor` whose
"models" are the tiers: for each public prompt, a tier's label is the mean quality of the
set's models in that tier relative to the set's reference. Any user model is then
predicted by its tier's head, whatever its name (a model the prior never saw included).

Features: the generic structure of the prompt and the shipped static embedding, no word
n-grams (they memorise a benchmark's subjects, which does not carry over to other
traffic, and they would make the shipped file large). Cross-fitted like any predictor, so
a tuner replaying one of the public prompts gets an out-of-group prediction.

``thrifty tune`` adapts it: the per-model predictor is fitted with the prior's logit as
an offset (``linear.fit_logistic``), so its L2 penalty shrinks towards the prior, not
towards a coin flip; with a few rows the prior dominates, with many the data does.
The shipped file (``data/routing_prior.npz``) is trained on every public graded row by
``python -m bench.routing_prior``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord
from thrifty.registry import ModelRegistry, ResolvedModel

if TYPE_CHECKING:
    from thrifty.routing.predictor import QualityPredictor

TIER_EDGES = (1.5, 4.0, 16.0, 64.0)
TIERS = ("tier-peer", "tier-2x", "tier-4x", "tier-16x", "tier-64x")
"""Cheaper than the reference by: < 1.5× (or dearer), 1.5–4×, 4–16×, 16–64×, ≥ 64×."""
REFERENCE = "tier-reference"
TYPICAL_REQUEST = (1000, 250)  # input, output tokens
SHIPPED = Path(__file__).resolve().parent / "data" / "routing_prior.npz"
PRIOR_ENCODER = "static"
PRIOR_L2, PRIOR_ITERATIONS = 1e-3, 60  # as the shipped prior was trained and measured


def typical_cost(model: ResolvedModel) -> float | None:
    if model.price is None:
        return None
    tokens_in, tokens_out = TYPICAL_REQUEST
    return tokens_in * model.price.input_per_token + tokens_out * model.price.output_per_token


def tier_of(model: ResolvedModel, reference: ResolvedModel) -> int:
    """Index into ``TIERS`` of ``model`` against ``reference`` (unknown price: peer)."""
    mine, theirs = typical_cost(model), typical_cost(reference)
    if mine is None or theirs is None or mine <= 0:
        return 0 if mine is None or theirs is None else len(TIERS) - 1
    ratio = theirs / mine
    return sum(ratio >= edge for edge in TIER_EDGES)


def tiered(
    records: Sequence[ReplayRecord], registry: ModelRegistry, reference: str
) -> list[ReplayRecord]:
    """``records`` with answers keyed by tier: each tier's mean recorded quality."""
    ref = registry.get(reference)
    tier = {m: tier_of(registry.get(m), ref) for m in registry.names if m != reference}
    out = []
    for record in records:
        base = record.answers.get(reference)
        if base is None or base.quality is None:
            continue
        grades: dict[int, list[float]] = {}
        for model, answer in record.answers.items():
            if model in tier and answer.quality is not None:
                grades.setdefault(tier[model], []).append(answer.quality)
        answers = {TIERS[t]: RecordedAnswer(None, sum(q) / len(q), 1) for t, q in grades.items()}
        answers[REFERENCE] = RecordedAnswer(None, base.quality, 1)
        out.append(ReplayRecord(record.id, record.messages, {}, {}, answers))
    return out


@dataclass(frozen=True)
class GradedSet:
    """Public graded data: records, the registry that prices their models, the reference."""

    records: Sequence[ReplayRecord]
    registry: ModelRegistry
    reference: str


def train_prior(
    sets: Sequence[GradedSet], progress: Callable[[str], None] | None = None
) -> QualityPredictor:
    """A prior (a :class:`QualityPredictor` over ``TIERS``) from ``sets``."""
    from thrifty.routing.predictor import QualityPredictor

    rows = [r for s in sets for r in tiered(s.records, s.registry, s.reference)]
    return QualityPredictor.fit(
        rows, [*TIERS, REFERENCE], REFERENCE, use_tags=False, use_words=False,
        encoder=PRIOR_ENCODER, l2=PRIOR_L2, iterations=PRIOR_ITERATIONS, progress=progress,
    )  # fmt: skip


def load_prior(setting: str | None) -> QualityPredictor | None:
    """The prior a config's ``routing.prior`` names (``shipped``, ``none``, a path);
    None when off or when the shipped file is absent."""
    from thrifty.routing.predictor import QualityPredictor, resolve_prior

    if setting in (None, "", "none"):
        return None
    path = resolve_prior(setting)
    return QualityPredictor.load(path) if path.is_file() else None


def head_tiers(models: Sequence[str], reference: str, registry: ModelRegistry) -> list[int]:
    ref = registry.get(reference)
    return [tier_of(registry.get(m), ref) for m in models]
