"""Run recorded requests through the real pipeline, answered by a :class:`ReplayProvider`.

Nothing here models the system: each record becomes the same ``Context`` the gateway
would build (a request that names no model, so ``default_model`` answers unless a
technique decides otherwise), runs through ``Runtime.run`` as an anonymous caller, and
its ledger record and reply are read back. Quality is the recorded quality of the answer
that came back.

Governance runs as in the gateway (its stage is absent without governance). Budgets
(``governance.budgets``) are simulated in memory, starting empty: a request they refuse
is a ``refused`` row naming the budget. Records carry no time, so every request is
stamped with the moment the replay started: the whole dataset falls in one window of
each budget (one UTC day, one month), as if it were one day's traffic. The caller is
anonymous, so ``team:`` and ``tag:`` budgets apply (from the records' tags), ``key:``
budgets and per-key rate limits do not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from thrifty.config.schema import ThriftyConfig
from thrifty.errors import PermissionDenied, RateLimited, ThriftyError
from thrifty.governance.keys.identity import ANONYMOUS, Caller
from thrifty.ledger.record import RequestRecord
from thrifty.ledger.sink import CollectingSink
from thrifty.pipeline.attribution import OWN_PURPOSES, overhead_cause
from thrifty.pipeline.context import CHAT
from thrifty.providers.replay import NoRecordedAnswer, ReplayProvider
from thrifty.recordings.dataset import ReplayRecord
from thrifty.runtime import Runtime
from thrifty.techniques import REPORT_ORDER
from thrifty.usage import Usage

#: The techniques replay reports on, in report order (from the technique table).
TECHNIQUES = REPORT_ORDER


@dataclass(slots=True)
class RowOutcome:
    """One record replayed once. ``status``: ok | missing_answer | refused | error.

    ``refused``: governance refused the request (``error_code`` says why, e.g.
    ``budget_exceeded``; ``budget`` names the budget's scope)."""

    id: str
    status: str
    model: str | None = None
    upstream_model: str | None = None
    cost: float = 0.0
    baseline_cost: float | None = None
    usage: Usage | None = None
    unpriced: bool = False
    quality: float | None = None
    savings: dict[str, float] = field(default_factory=dict)
    overhead: dict[str, float] = field(default_factory=dict)
    techniques: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_code: str | None = None
    budget: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def without_techniques(config: ThriftyConfig, model: str) -> ThriftyConfig:
    """``config`` with every technique off and ``model`` answering everything: the baseline
    (and the "always this model" reference points)."""
    off = {name: type(getattr(config, name))() for name in TECHNIQUES}  # defaults are off
    # nor governance: the reference points are what the requests cost, all of them
    off["governance"] = type(config.governance)()
    return config.model_copy(update={**off, "default_model": model, "baseline_model": model})


def _overheads(record: RequestRecord) -> dict[str, float]:
    """The cost of each cause's own calls (by ``pipeline.attribution.overhead_cause``)."""
    out: dict[str, float] = {}
    for attempt in record.attempts:
        if attempt.purpose not in OWN_PURPOSES and attempt.cost:
            cause = overhead_cause(attempt.purpose)
            out[cause] = out.get(cause, 0.0) + attempt.cost
    return out


def _outcome(
    record_in: ReplayRecord, ledger: RequestRecord | None, reply: Any, error: Exception | None
) -> RowOutcome:
    if error is not None:
        status = "missing_answer" if isinstance(error, NoRecordedAnswer) else "error"
        if isinstance(error, RateLimited | PermissionDenied) and ledger is None:
            status = "refused"  # governance refuses before the ledger stage: no row
        message = getattr(error, "message", str(error))
        outcome = RowOutcome(record_in.id, status, error=message)
        if isinstance(error, ThriftyError):
            outcome.error_code = error.code
            outcome.budget = error.headers.get("x-thrifty-budget")
    else:
        upstream_model = reply.attempt.upstream_model if reply.attempt else None
        answer = record_in.answers.get(upstream_model or "")
        outcome = RowOutcome(
            record_in.id,
            "ok",
            model=reply.model,
            upstream_model=upstream_model,
            quality=answer.quality if answer else None,
        )
    if ledger is not None:
        outcome.cost = ledger.cost
        outcome.baseline_cost = ledger.baseline_cost
        outcome.usage = ledger.usage
        outcome.unpriced = ledger.unpriced
        outcome.savings = dict(ledger.savings)
        outcome.techniques = dict(ledger.techniques)
        outcome.overhead = _overheads(ledger)
    return outcome


def replay_caller(caller: Caller) -> Caller:
    """``caller`` as replay can simulate it: its overrides, allowed models, team, tags and
    budgets; not its rate limits (recordings have no arrival times, so every request
    would fall in one minute)."""
    return replace(caller, requests_per_minute=None, tokens_per_minute=None)


async def replay_records(
    records: Sequence[ReplayRecord],
    config: ThriftyConfig,
    caller: Caller | None = None,
    providers: Mapping[str, ReplayProvider] | None = None,
) -> list[RowOutcome]:
    """Replay ``records`` in order through a runtime built from ``config``, as ``caller``
    (a virtual key: its per-key pipeline, models and budgets) or as no one.

    ``providers``: replay providers over these same ``records`` (see :class:`Replayer`);
    by default new ones."""
    if caller is not None:
        caller = replay_caller(caller)
        limits = type(config.governance.rate_limits)()  # nor the config's default limits
        governance = config.governance.model_copy(update={"rate_limits": limits})
        config = config.model_copy(update={"governance": governance})
    sink = CollectingSink()
    if providers is None:
        providers = {name: ReplayProvider(name, records) for name in config.providers}
    runtime = Runtime(config, providers=dict(providers), ledger=sink, ephemeral=True)
    outcomes: list[RowOutcome] = []
    started = time.time()  # every record's time: budgets see one window
    try:
        for record in records:
            body: dict[str, Any] = {"messages": [dict(m) for m in record.messages], **record.params}
            body.pop("model", None)
            body.pop("stream", None)
            headers = {"x-thrifty-tags": ",".join(f"{k}={v}" for k, v in record.tags.items())}
            reply, error = None, None
            written = len(sink.records)
            try:
                ctx = runtime.new_context(CHAT, body, headers, caller, key_id=None)
                ctx.ts = started
                reply = await runtime.run(ctx, caller or ANONYMOUS)
            except ThriftyError as exc:
                error = exc
            ledger = sink.records[written] if len(sink.records) > written else None
            outcomes.append(_outcome(record, ledger, reply, error))
    finally:
        await runtime.aclose()
    return outcomes


def replay(
    records: Sequence[ReplayRecord], config: ThriftyConfig, caller: Caller | None = None
) -> list[RowOutcome]:
    """Synchronous wrapper for the CLI."""
    return asyncio.run(replay_records(records, config, caller))


class Replayer:
    """Replays one set of records under many configs (``thrifty tune``: ~1,200 of them),
    all through one :class:`ReplayProvider` per provider name: a provider remembers the
    replies it built (a reply depends on the request and the recordings alone), so the
    same request is built once, not once per replay."""

    def __init__(self, records: Sequence[ReplayRecord]) -> None:
        self.records = records
        self._providers: dict[str, ReplayProvider] = {}

    def __call__(
        self,
        config: ThriftyConfig,
        rows: Sequence[int] | None = None,
        caller: Caller | None = None,
    ) -> list[RowOutcome]:
        """The outcomes of every record, or of the records at ``rows`` (in that order)."""
        for name in config.providers:
            if name not in self._providers:
                self._providers[name] = ReplayProvider(name, self.records)
        providers = {name: self._providers[name] for name in config.providers}
        records = self.records if rows is None else [self.records[i] for i in rows]
        return asyncio.run(replay_records(records, config, caller, providers))
