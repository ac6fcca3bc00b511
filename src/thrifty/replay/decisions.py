"""Replaying routing-only candidates by their decisions (the tuner's fast path).

When routing is the only technique on (no compression, batching, cascade, semantic
cache nor governance; the exact cache only if no two requests are the same), a
request's outcome depends only on the model routing picks: it is that model's recorded
answer, dispatched as without any technique. So each model is replayed once through
the real pipeline (``without_techniques``), each request is *prepared* once (task,
guards, token count: ``Router.prepare``; predictions are memoised by the predictor), and
a candidate's outcome
for a row is the replayed outcome of the model its own router chooses. Costs and quality
are exactly the pipeline's, and so is the baseline (the candidate's baseline model at list
price on the served tokens: docs/ledger.md); what differs is the ledger detail (no
``route`` entry and no savings by cause on these rows), so the tuner replays the
configuration it finally chooses through the whole pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from thrifty.config.schema import ThriftyConfig
from thrifty.pipeline.attribution import baseline_usage
from thrifty.pricing import cost
from thrifty.pricing.catalogue import ModelPrice
from thrifty.recordings.dataset import ReplayRecord
from thrifty.registry import ModelRegistry
from thrifty.replay.simulator import Replayer, RowOutcome, without_techniques
from thrifty.replay.thresholds import rows_independent
from thrifty.routing.build import build_routing
from thrifty.routing.policy import Prepared

# a prepared request does not depend on them
KNOBS = {"threshold", "tradeoff_lambda", "predictor", "share"}


def routing_only(config: ThriftyConfig, distinct: bool) -> bool:
    """Routing on (with a learned strategy), every other technique and governance off.

    The exact cache may be on when every request is ``distinct`` (it cannot hit then)."""
    if not config.routing.enabled or config.routing.strategy == "rules":
        return False
    return rows_independent(config, distinct, {"routing"})


class DecisionReplay:
    def __init__(self, records: Sequence[ReplayRecord], replay: Replayer | None = None) -> None:
        """``replay``: a :class:`Replayer` of ``records`` to share (default: its own)."""
        self._records = records
        self._replay = replay if replay is not None else Replayer(records)
        self._bodies = [_body(r) for r in records]
        keys = {json.dumps(b, sort_keys=True, default=str) for b in self._bodies}
        self._distinct = len(keys) == len(self._bodies)
        self._by_model: dict[str, list[RowOutcome]] = {}
        # each model's outcomes measured against a baseline price: the same for every
        # candidate (issue #19: rebuilding them per candidate and row was ~half the tune)
        self._against: dict[ModelPrice | None, dict[str, list[RowOutcome]]] = {}
        self._prepared: dict[str, list[Prepared]] = {}

    @property
    def distinct(self) -> bool:
        """No two requests are the same (an exact cache cannot hit)."""
        return self._distinct

    def outcomes(self, config: ThriftyConfig) -> list[RowOutcome] | None:
        """The candidate's outcome per record, or None when it is not routing-only."""
        if not routing_only(config, self._distinct):
            return None
        baseline = config.baseline_model or config.default_model
        registry = ModelRegistry.from_config(config)
        router = build_routing(config.routing, registry, baseline).router
        key = json.dumps(
            [config.routing.model_dump(exclude=KNOBS), baseline], sort_keys=True, default=str
        )
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = [router.prepare(body, r.tags) for body, r in zip(
                self._bodies, self._records, strict=True)]  # fmt: skip
            self._prepared = {key: prepared}  # one routing section at a time (memory)
        price = registry.get(baseline).price if baseline else None
        table = self._against.setdefault(price, {})  # model → its rows against ``price``
        out = []
        for i, item in enumerate(prepared):
            model = router.choose(item).model
            measured = table.get(model)
            if measured is None:
                measured = table[model] = self._measured(config, model, price)
            out.append(measured[i])
        return out

    def _measured(
        self, config: ThriftyConfig, model: str, price: ModelPrice | None
    ) -> list[RowOutcome]:
        """``model``'s replayed outcomes against ``price``, computed once (candidates
        share the row objects: nothing downstream modifies an outcome)."""
        if model not in self._by_model:
            self._by_model[model] = self._replay(without_techniques(config, model))
        return [_against(outcome, price) for outcome in self._by_model[model]]


def _against(outcome: RowOutcome, price: ModelPrice | None) -> RowOutcome:
    """``outcome`` (replayed with its own model as baseline) measured against the
    candidate's baseline model: its served tokens at that model's price, as the ledger
    prices them (``baseline_usage``)."""
    if outcome.usage is None or outcome.baseline_cost is None:
        return outcome
    if price is None:
        return replace(outcome, baseline_cost=None)
    usage = baseline_usage(outcome.usage, outcome.techniques)
    return replace(outcome, baseline_cost=cost(usage, price).total)


def _body(record: ReplayRecord) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [dict(m) for m in record.messages], **record.params}
    body.pop("model", None)
    body.pop("stream", None)
    return body
