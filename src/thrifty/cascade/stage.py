"""The cascade stage: answer with a cheap tier, check, escalate only when the check fails.

Each tier is called through the rest of the pipeline (retries and fallbacks included)
without streaming; its answer is scored by the tier's checks (see ``checks.py``) and
accepted when the combined score reaches the tier's threshold. The last tier is always
accepted. A rejected answer stays in the ledger as a ``cascade`` attempt (its cost is the
cascade's overhead), a judge call as a ``judge`` attempt. The ledger books the cascade's
saving (``pipeline/attribution.py``): an accepted cheap answer saves the baseline's price
of its tokens minus theirs; an escalation costs only the rejected tiers and the judges.

Streaming clients get the accepted answer streamed once it is accepted: the first byte
waits for the cheap tier's whole answer and its checks (and any escalation). Send
``x-thrifty-cascade: off`` to stream straight from the model instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thrifty.cascade.checks import Check, combine
from thrifty.cascade.config import CascadeConfig
from thrifty.cascade.judge import judge_messages
from thrifty.errors import UpstreamError
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.side_call import side_call
from thrifty.pipeline.stage import CallNext
from thrifty.pipeline.synthetic_stream import stream_completion
from thrifty.pipeline.worst_case import PAD, Bound, Spender
from thrifty.registry import ModelRegistry
from thrifty.tokens import count_messages

CASCADE_HEADER = "cascade"  # x-thrifty-cascade: off
_JUDGE_MAX_TOKENS = 160  # two sentences of justification, then the rating
_CLIP_NOTE = 24  # "[... N more characters not shown]", per clipped field of the judge's case


@dataclass(frozen=True, slots=True)
class Tier:
    model: str
    checks: Sequence[Check]
    threshold: float

    @property
    def needs_logprobs(self) -> bool:
        return any(check.needs_logprobs for check in self.checks)


class CascadeStage(Spender):
    def __init__(
        self,
        config: CascadeConfig,
        tiers: Sequence[Tier],
        registry: ModelRegistry,
        dispatch: DispatchStage,
    ) -> None:
        self._config = config
        self._tiers = list(tiers)
        self._registry = registry
        self._dispatch = dispatch
        self._index = {tier.model: i for i, tier in enumerate(self._tiers)}

    def _start(self, ctx: Context) -> int | None:
        """Routing picks where the cascade starts; without routing, at the first tier."""
        if "route" in ctx.techniques:
            return self._index.get(ctx.model)
        return 0

    def _applies(self, ctx: Context) -> bool:
        applies = ctx.auto or ctx.requested_model in self._config.applies_to
        return ctx.endpoint == CHAT and ctx.controls.get(CASCADE_HEADER) != "off" and applies

    def serving_models(self, ctx: Context, model: str) -> list[str]:
        """The models whose answer the cascade would serve when ``model`` would answer: the
        tiers from where it starts (the cache may serve their stored answers to the same
        request: the cascade accepted them for it). Just ``model`` when it does not apply."""
        if not self._applies(ctx):
            return [model]
        start = self._index.get(model) if "route" in ctx.techniques else 0
        if start is None:
            return [model]
        return [tier.model for tier in self._tiers[start:]]

    def answer_models(self, ctx: Context, models: set[str]) -> set[str]:
        """Any tier may answer."""
        if not self._applies(ctx):
            return models
        return models | {tier.model for tier in self._config.tiers}

    def answer_cost(self, ctx: Context, bound: Bound, tokens: int, body: dict[str, Any]) -> float:
        """A whole climb: every tier is paid for, plus one judge call per checked tier."""
        if not self._applies(ctx):
            return 0.0
        n = body.get("n")
        choices = n if isinstance(n, int) and n > 0 else 1
        tiers = self._config.tiers
        climb = sum(bound.call_cost(t.model, tokens, body, choices=choices) for t in tiers)
        judge = self._config.judge_model
        if judge:
            for tier in tiers[:-1]:
                answer = bound.answer_tokens(body, tier.model)
                climb += judge_cost(bound, judge, tokens, answer)
        return climb

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        if not self._applies(ctx):
            return await call_next(ctx)
        start = self._start(ctx)
        if start is None or start == len(self._tiers) - 1:
            return await call_next(ctx)
        client_stream, original = ctx.stream, ctx.body
        ctx.stream = False
        try:
            reply, log = await self._climb(ctx, start, call_next)
        finally:
            ctx.body, ctx.stream = original, client_stream
        if reply.body is not None and not original.get("logprobs"):
            for choice in reply.body.get("choices") or ():
                choice["logprobs"] = None
        ctx.techniques["cascade"] = {
            "start": self._tiers[start].model,
            "accepted": ctx.model,
            "tiers": log,
        }
        if client_stream and reply.body is not None:
            reply.chunks = stream_completion(reply.body, ctx.client_wants_usage)
            reply.body = None
        return reply

    async def _climb(
        self, ctx: Context, start: int, call_next: CallNext
    ) -> tuple[Reply, list[dict[str, Any]]]:
        log: list[dict[str, Any]] = []
        last = len(self._tiers) - 1
        original = ctx.body
        for index in range(start, last + 1):
            tier = self._tiers[index]
            ctx.model = tier.model
            ctx.body = {**original, "logprobs": True} if tier.needs_logprobs else original
            first = len(ctx.attempts)
            started = time.perf_counter()
            try:
                reply = await call_next(ctx)
            except UpstreamError as exc:
                if index == last:
                    raise
                log.append(
                    {"model": tier.model, "accepted": False, "reason": f"failed: {exc.message}"}
                )
                continue
            if index == last:
                log.append({"model": tier.model, "accepted": True, "reason": "last tier"})
                return reply, log
            judge = self._judge_for(ctx)
            verdicts = [await check(ctx.body, reply.body or {}, judge) for check in tier.checks]
            score, reason = combine(verdicts)
            accepted = score >= tier.threshold
            log.append({
                "model": tier.model, "accepted": accepted, "score": round(score, 3),
                "reason": reason, "check_ms": round((time.perf_counter() - started) * 1000, 3),
            })  # fmt: skip
            if accepted:
                return reply, log
            for attempt in ctx.attempts[first:]:
                if attempt.status == "ok" and attempt.purpose in ("main", "retry", "fallback"):
                    attempt.purpose = "cascade"  # a rejected answer: the cascade's overhead
        raise AssertionError("unreachable: the last tier always returns")

    def _judge_for(self, ctx: Context) -> Any:
        judge_model = self._config.judge_model
        if judge_model is None:
            return None

        async def judge(messages: list[dict[str, Any]]) -> str:
            # "" (a failed call) leaves the judge check without a rating: it abstains
            return await side_call(
                self._dispatch,
                ctx,
                judge_model,
                messages,
                purpose="judge",
                max_tokens=_JUDGE_MAX_TOKENS,
            )

        return judge


def judge_cost(bound: Bound, judge: str, prompt_tokens: int, answer_tokens: int) -> float:
    """One judge call: its rubric (counted), the request's system and question (at most the
    prompt) and the tier's answer (at most its limit, re-counted +25% since the judge's
    tokenizer may differ); :data:`_JUDGE_MAX_TOKENS` answer tokens."""
    fixed = count_messages(judge_messages("(none)", "", ""), bound.upstream(judge)).tokens
    tokens = fixed + 3 * _CLIP_NOTE + prompt_tokens + math.ceil(answer_tokens * PAD)
    return bound.call_cost(judge, tokens, {"max_tokens": _JUDGE_MAX_TOKENS})
