"""The shadow runner: samples requests, and after each sampled one is answered asks the
candidates the same question in a background task, grades them, and writes the result.

Nothing here runs on the request's path: :meth:`ShadowRunner.sample` is a few
comparisons when the request arrives, and :meth:`ShadowRunner.start` (a finalizer, run
when the request ends) only creates a task. The task's calls go through the runtime's
dispatch stage (retries, fallbacks, pricing) and become attempts with purpose
``shadow`` on one ledger record of its own (``endpoint: "shadow"``, no baseline: its
cost is evaluation cost, never a technique's saving), whose ``shadows`` hold each
candidate's graded answer linked to the served request's id.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from thrifty.errors import ThriftyError
from thrifty.governance.budgets.base import BudgetBucket, BudgetExceeded, BudgetStore
from thrifty.governance.budgets.buckets import window
from thrifty.ledger.record import AttemptRecord, RequestRecord, attempts_cost
from thrifty.ledger.redact import Redactor
from thrifty.ledger.sink import LedgerSink
from thrifty.pipeline.context import CHAT, Context, Reply, new_request_id
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.prices import answer_tokens, unit_prices
from thrifty.pipeline.worst_case import prompt_tokens
from thrifty.registry import ModelRegistry
from thrifty.shadow.config import ShadowConfig
from thrifty.shadow.grading import Grader

__all__ = ["PURPOSE", "ShadowRunner"]

log = logging.getLogger(__name__)

PURPOSE = "shadow"
"""The ``purpose`` of every shadow attempt (candidate answers and judge calls)."""

_DROP = ("stream", "stream_options", "n", "model")
_JUDGE_PROMPT_TOKENS = 600  # the MT-Bench template and its framing, generously


@dataclass(frozen=True, slots=True)
class Sampled:
    """What a sampled request's shadow needs, copied when it arrived (before any stage
    rewrote the body)."""

    request_id: str
    body: dict[str, Any]
    key_id: str | None
    team: str | None
    tags: dict[str, str]
    baseline_model: str


class ShadowRunner:
    """One per runtime: the sampling counters, the shadow budget and the running tasks.

    ``candidates``: the models to ask (already resolved: the configured ones, else the
    router's); for each request only those cheaper than the served model are asked,
    unless ``shadow.candidates`` names them explicitly.
    """

    def __init__(
        self,
        section: ShadowConfig,
        registry: ModelRegistry,
        dispatch: DispatchStage,
        ledger: LedgerSink,
        budgets: BudgetStore,
        *,
        candidates: Sequence[str],
        default_output_tokens: int,
        seed: int | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.section = section
        self._registry = registry
        self._dispatch = dispatch
        self._ledger = ledger
        self._budgets = budgets
        self._candidates = tuple(candidates)
        self._explicit = bool(section.candidates)
        self._default_output = default_output_tokens
        self._random = random.Random(seed)
        self._redactor = redactor or Redactor(())
        self._recent: deque[float] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = {"sampled": 0, "shadowed": 0, "over_budget": 0, "failed": 0}

    # ----------------------------------------------------------------- on the path

    def sample(self, ctx: Context) -> Sampled | None:
        """Whether to shadow ``ctx`` (eligible, in the opt-in scope, drawn, under the hourly
        cap); a copy of what the shadow needs when it is."""
        section = self.section
        body = ctx.body
        if ctx.endpoint != CHAT or ctx.controls.get("shadow") == "off":
            return None
        if section.skip_tools and (body.get("tools") or body.get("functions")):
            return None
        if section.keys and ctx.key_id not in section.keys:
            return None
        if section.tags and any(ctx.tags.get(k) != v for k, v in section.tags.items()):
            return None
        if self._random.random() >= section.rate:
            return None
        messages = body.get("messages") or []
        if len(orjson.dumps(messages)) > section.max_request_bytes:
            return None
        now = time.monotonic()
        if section.max_per_hour:
            while self._recent and now - self._recent[0] > 3600:
                self._recent.popleft()
            if len(self._recent) >= section.max_per_hour:
                return None
            self._recent.append(now)
        self.counts["sampled"] += 1
        kept = {k: copy.deepcopy(v) for k, v in body.items() if k not in _DROP}
        return Sampled(
            ctx.request_id, kept, ctx.key_id, ctx.team, dict(ctx.tags), ctx.baseline_model
        )

    def start(self, sampled: Sampled, reply: Reply | None) -> None:
        """Finalizer: when the request ended with an answer, shadow it in the background."""
        if reply is None:
            return
        served = reply.answer_text()
        if not served:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._shadow(sampled, reply.model, served))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----------------------------------------------------------------- off the path

    def candidates_for(self, served_model: str) -> list[str]:
        names = [n for n in self._candidates if n != served_model]
        if self._explicit:
            return names
        served = _blended(self._registry, served_model)
        if served is None:
            return []
        return [n for n in names if (p := _blended(self._registry, n)) is not None and p < served]

    async def _shadow(self, sampled: Sampled, served_model: str, served: str) -> None:
        try:
            await self._shadow_unguarded(sampled, served_model, served)
        except asyncio.CancelledError:
            raise
        except Exception:  # a shadow never takes anything down with it
            self.counts["failed"] += 1
            log.exception("shadow evaluation of %s failed", sampled.request_id)

    async def _shadow_unguarded(self, sampled: Sampled, served_model: str, served: str) -> None:
        candidates = self.candidates_for(served_model)
        judge = self.section.judge_model or sampled.baseline_model
        if not candidates:
            return
        # token counting (a tokenizer's first load) stays off the event loop
        worst = await asyncio.to_thread(self._worst_cost, sampled.body, served, candidates, judge)
        if worst is None:
            log.warning("shadow skipped: a candidate or the judge %s has no price", judge)
            return
        try:
            reservation = await self._budgets.reserve(
                (_bucket(self.section.daily_budget_usd),), worst, ttl_s=self._ttl(candidates)
            )
        except BudgetExceeded:
            self.counts["over_budget"] += 1
            return
        record_id = new_request_id()
        attempts: list[AttemptRecord] = []
        try:
            answers = await asyncio.gather(
                *(self._call(record_id, name, sampled.body, attempts) for name in candidates)
            )
            grader = Grader(
                self.section, judge, sampled.body, served, self._judge_call(record_id, attempts)
            )
            shadows = await grader.grade(sampled.request_id, served_model, candidates, answers)
            for shadow in shadows:  # graded on the original, stored redacted
                shadow.answer = self._redactor.text(shadow.answer)
        finally:
            for seq, attempt in enumerate(attempts):
                attempt.seq = seq
            cost, unpriced = attempts_cost(attempts)
            await self._budgets.settle(reservation, cost)
        self.counts["shadowed"] += 1
        self._ledger.submit(
            RequestRecord(
                request_id=record_id, ts=time.time(), endpoint="shadow",
                requested_model="shadow", status="ok", http_status=200,
                key_id=sampled.key_id, team=sampled.team, tags=sampled.tags,
                cost=cost, unpriced=unpriced, attempts=attempts, shadows=shadows,
            )
        )  # fmt: skip

    async def _call(
        self,
        record_id: str,
        model: str,
        body: Mapping[str, Any],
        attempts: list[AttemptRecord],
        *,
        max_tokens: int | None = None,
    ) -> Reply | str:
        """One call through dispatch, its tries appended to ``attempts`` (purpose
        ``shadow``); the reply, or the error's text when it failed or timed out."""
        call_body = {**body, "model": model}
        if max_tokens is not None:
            call_body["max_tokens"] = max_tokens
        child = Context(
            endpoint=CHAT, body=call_body, requested_model=model, model=model,
            baseline_model=model, request_id=record_id,
        )  # fmt: skip
        try:
            return await asyncio.wait_for(self._dispatch(child), self.section.timeout_s)
        except TimeoutError:
            return f"timeout after {self.section.timeout_s:g} s"
        except ThriftyError as exc:
            return f"{exc.status} {exc.message}"
        finally:
            for attempt in child.attempts:
                attempt.purpose = PURPOSE
            attempts.extend(child.attempts)

    def _judge_call(self, record_id: str, attempts: list[AttemptRecord]) -> Any:
        async def call(model: str, messages: list[dict[str, str]]) -> str | None:
            body = {"messages": messages, "temperature": 0}
            reply = await self._call(
                record_id, model, body, attempts, max_tokens=self.section.judge_max_tokens
            )
            return reply.answer_text() if isinstance(reply, Reply) else None

        return call

    def _worst_cost(
        self, body: dict[str, Any], served: str, candidates: Sequence[str], judge: str
    ) -> float | None:
        """What the shadow may cost at most: every candidate's longest answer, and every
        judge call with the longest answers in its prompt."""
        try:
            total, longest = 0.0, 0
            for name in candidates:
                model = self._registry.get(name)
                if model.price is None:
                    return None
                tokens = prompt_tokens(body, CHAT, model)
                answer = answer_tokens(body, model, self._default_output)
                price_in, price_out = unit_prices(model.price)
                total += tokens * price_in + answer * price_out
                longest = max(longest, answer, tokens)
            judge_model = self._registry.get(judge)
            if judge_model.price is None:
                return None
            price_in, price_out = unit_prices(judge_model.price)
            served_tokens = len(served) // 2 + 1  # ≥ any tokenizer's count
            per_call = (
                2 * longest + served_tokens + _JUDGE_PROMPT_TOKENS
            ) * price_in + self.section.judge_max_tokens * price_out
            calls = 2 * len(candidates) + 1
            return total + calls * per_call
        except ThriftyError:
            return None

    def _ttl(self, candidates: Sequence[str]) -> float:
        return self.section.timeout_s * (2 + len(candidates)) + 60

    @property
    def in_flight(self) -> int:
        """Shadows started and not yet finished."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for every shadow in flight (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel the shadows still running (they have no client waiting) and close the
        budget store."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._budgets.aclose()


def _blended(registry: ModelRegistry, name: str) -> float | None:
    """Input plus output price per token: what "cheaper" compares."""
    try:
        price = registry.get(name).price
    except ThriftyError:
        return None
    if price is None:
        return None
    price_in, price_out = unit_prices(price)
    return price_in + price_out


def _bucket(limit_usd: float) -> BudgetBucket:
    """Today's (UTC) shadow bucket, windowed as every daily budget is."""
    day, ends = window("day", time.time())
    return BudgetBucket("shadow", "day", day, limit_usd, ends)
