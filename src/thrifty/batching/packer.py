"""Answer a group of compatible chat requests with packed calls; re-ask what fails.

Used by ``Thrifty.batch()`` (the group is the caller's list) and by the gateway window
(the group is what arrived in one window). Each request keeps its own ``Context``, so the
ledger writes one row per request, as for any other.

Who pays for a packed call (the apportionment rule, also in ``docs/batching.md``): every
item in the call is charged its own question's tokens (plus its label) and an equal share
of the shared input (system prompt, instructions); its own answer's tokens (plus label)
and an equal share of the rest of the output. Cached, cache-write and reasoning tokens
follow the input and output shares. Integer shares sum exactly to the call's usage, and
prices are linear, so the items' costs sum to the call's cost. An item whose answer was
unusable still pays its share, and its re-ask is charged to it alone.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from thrifty.batching.config import PackingConfig
from thrifty.batching.packing import (
    INSTRUCTIONS,
    LABEL_TOKENS,
    make_labels,
    pack_questions,
    parse_answers,
    plan_chunks,
    split_usage,
)
from thrifty.errors import ThriftyError
from thrifty.ledger.record import AttemptRecord
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.dispatch import attempt_cost
from thrifty.pipeline.stage import CallNext
from thrifty.registry import ModelRegistry
from thrifty.tokens import count_messages, count_text
from thrifty.usage import Usage

log = logging.getLogger(__name__)

#: Parameters that change the answer's shape: such requests are never packed.
_NOT_PACKABLE = frozenset(
    {"tools", "functions", "tool_choice", "function_call", "response_format", "logprobs",
     "top_logprobs", "stop", "prediction", "audio", "modalities", "parallel_tool_calls"}
)  # fmt: skip
#: Parameters that do not have to match for requests to share a call.
_PER_REQUEST = frozenset({"messages", "model", "metadata", "user", "stream", "stream_options"})
_BUDGET_KEYS = ("max_completion_tokens", "max_tokens")
_PREFIX_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class PackItem:
    """A request that can be packed: its leading system messages and its one question."""

    ctx: Context
    prefix: tuple[dict[str, Any], ...]
    question: str
    question_tokens: int
    group: bytes
    """Requests with equal ``group`` (model, system prompt, parameters) may share a call."""


class Packer:
    """Packs items into calls that fit the model, parses the answers, re-asks failures."""

    def __init__(self, registry: ModelRegistry, config: PackingConfig) -> None:
        self._registry = registry
        self._config = config

    def item_of(self, ctx: Context) -> PackItem | None:
        """``ctx`` as a :class:`PackItem`, or None when it must go alone.

        Packable: a non-streamed chat request, one user question (string content) after
        optional system/developer messages, no tools or output-shaping parameters, ``n``
        of 1, and a question of at most ``max_question_tokens``.
        """
        body = ctx.body
        if ctx.endpoint != CHAT or ctx.stream or _NOT_PACKABLE.intersection(body):
            return None
        if body.get("n") not in (None, 1):
            return None
        messages = body.get("messages") or []
        *prefix, last = messages
        if last.get("role") != "user" or not isinstance(last.get("content"), str):
            return None
        if any(
            m.get("role") not in _PREFIX_ROLES or not isinstance(m.get("content"), str)
            for m in prefix
        ):
            return None
        tokens = count_text(last["content"], self._upstream_model(ctx.model)).tokens
        if tokens > self._config.max_question_tokens:
            return None
        shared = {k: v for k, v in body.items() if k not in _PER_REQUEST}
        group = orjson.dumps(
            [ctx.model, [{"role": m["role"], "content": m["content"]} for m in prefix], shared],
            option=orjson.OPT_SORT_KEYS,
        )
        return PackItem(ctx, tuple(prefix), last["content"], tokens, group)

    def _upstream_model(self, model: str) -> str:
        return self._registry.get(model).deployments[0].upstream_model

    def _budget(self, item: PackItem) -> int:
        for key in _BUDGET_KEYS:
            value = item.ctx.body.get(key)
            if isinstance(value, int):
                return value
        return self._config.answer_tokens

    async def answer(
        self, items: Sequence[PackItem], call: CallNext
    ) -> list[Reply | BaseException]:
        """One reply (or the error to raise) per item, in order.

        ``items`` must share a ``group``. ``call`` runs a context to its reply (the rest of
        the pipeline, or dispatch); packed calls and re-asks both go through it.
        """
        if not items:
            return []
        model = self._registry.get(items[0].ctx.model)
        upstream = model.deployments[0].upstream_model
        instructions = {"role": "user", "content": INSTRUCTIONS}
        fixed = count_messages([*items[0].prefix, instructions], upstream).tokens
        chunks = plan_chunks(
            [it.question_tokens for it in items],
            [self._budget(it) for it in items],
            fixed_tokens=fixed,
            max_batch_size=self._config.max_batch_size,
            context_window=model.context_window,
            max_output_tokens=model.max_output_tokens,
        )
        results: list[Reply | BaseException] = [RuntimeError("not answered")] * len(items)

        async def run(chunk: list[int]) -> None:
            chosen = [items[i] for i in chunk]
            if len(chosen) == 1:
                replies = [await _alone(chosen[0], call, "alone")]
            else:
                replies = await self._packed(chosen, call, model.max_output_tokens)
            for i, reply in zip(chunk, replies, strict=True):
                results[i] = reply

        await asyncio.gather(*(run(chunk) for chunk in chunks))
        return results

    async def _packed(
        self, items: list[PackItem], call: CallNext, max_output: int | None
    ) -> list[Reply | BaseException]:
        labels = make_labels(len(items))
        batch_id = "bat-" + secrets.token_hex(6)
        budget = sum(self._budget(it) + LABEL_TOKENS for it in items)
        packed = _packed_context(items, labels, min(budget, max_output or budget))
        try:
            reply: Reply | None = await call(packed)
        except ThriftyError as exc:
            log.warning(
                "packed call failed; asking each item alone",
                extra={"batch_id": batch_id, "size": len(items), "error": exc.message},
            )
            reply = None
        text = (reply.answer_text() or "") if reply is not None else ""
        finish = _finish_reason(reply)
        parsed = parse_answers(text, labels, truncated=finish == "length")
        upstream = self._upstream_model(items[0].ctx.model)
        own_in = [it.question_tokens + LABEL_TOKENS for it in items]
        own_out = [
            count_text(parsed.answers[i], upstream).tokens + LABEL_TOKENS
            if i in parsed.answers
            else 0
            for i in range(len(items))
        ]
        shares = self._share_attempts(packed, reply, own_in, own_out)
        out: list[Reply | BaseException] = [RuntimeError("not answered")] * len(items)
        reasks: dict[int, Any] = {}
        for i, item in enumerate(items):
            ctx = item.ctx
            charged = [replace(a, request_id=ctx.request_id, seq=ctx.next_seq() + k)
                       for k, a in enumerate(shares[i])]  # fmt: skip
            ctx.attempts.extend(charged)
            note = {"id": batch_id, "size": len(items), "index": i}
            if reply is not None and i in parsed.answers:
                ctx.techniques["batch"] = {**note, "mode": "packed"}
                out[i] = self._item_reply(ctx, reply, parsed.answers[i], charged)
            else:
                problem = parsed.problems.get(i, "packed call failed")
                ctx.techniques["batch"] = {**note, "mode": "reasked", "problem": problem}
                reasks[i] = _alone(item, call, "reasked")
        if reasks:
            log.info(
                "re-asking packed items alone",
                extra={"batch_id": batch_id, "items": sorted(reasks), "size": len(items)},
            )
            for i, result in zip(reasks, await asyncio.gather(*reasks.values()), strict=True):
                out[i] = result
        return out

    def _share_attempts(
        self, packed: Context, reply: Reply | None, own_in: list[int], own_out: list[int]
    ) -> list[list[AttemptRecord]]:
        """Each item's part of every attempt the packed call made (failed ones: no usage)."""
        n = len(own_in)
        per_item: list[list[AttemptRecord]] = [[] for _ in range(n)]
        for attempt in packed.attempts:
            outputs = own_out if reply is not None and attempt is reply.attempt else [0] * n
            usages: list[Usage | None] = (
                list(split_usage(attempt.usage, own_in, outputs))
                if attempt.usage is not None
                else [None] * n
            )
            model = self._registry.get(attempt.model)
            for i in range(n):
                cost = attempt_cost(usages[i], model) if usages[i] is not None else attempt.cost
                per_item[i].append(replace(attempt, purpose="batch", usage=usages[i], cost=cost))
        return per_item

    def _item_reply(
        self,
        ctx: Context,
        packed: Reply,
        answer: str,
        charged: list[AttemptRecord],
    ) -> Reply:
        """The caller's own ``chat.completion``: its answer, usage = its share of the call.

        ``Reply.usage`` is what the request would have used sent alone (its messages,
        its answer), so the ledger's baseline is priced on the request as the caller sent
        it and batching is credited that priced at the served model minus its share of the
        packed call (``pipeline/attribution.py``); the body's usage is what the caller was
        charged.
        """
        upstream = self._upstream_model(packed.model)
        alone = Usage(
            input_tokens=count_messages(ctx.body["messages"], upstream).tokens,
            output_tokens=count_text(answer, upstream).tokens,
            estimated=True,
        )
        charged_usage = sum((a.usage for a in charged if a.usage is not None), Usage())
        body = dict(packed.body or {})
        body["id"] = f"{body.get('id', 'chatcmpl-thrifty')}-{ctx.request_id[-8:]}"
        body["choices"] = [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ]
        body["usage"] = charged_usage.to_openai()
        body.setdefault("created", int(time.time()))
        return Reply(
            model=packed.model,
            provider=packed.provider,
            body=body,
            usage=alone,
            attempt=charged[-1] if charged else None,
        )


async def _alone(item: PackItem, call: CallNext, mode: str) -> Reply | BaseException:
    """The item as an ordinary request; its share of a failed packed call (its ``batch``
    attempts) is the batching's loss."""
    ctx = item.ctx
    ctx.techniques.setdefault("batch", {"mode": mode})
    try:
        reply = await call(ctx)
    except ThriftyError as exc:
        return exc
    return reply


def _packed_context(items: list[PackItem], labels: list[str], max_tokens: int) -> Context:
    first = items[0].ctx
    body = {k: v for k, v in first.body.items() if k not in _PER_REQUEST}
    for key in _BUDGET_KEYS:
        body.pop(key, None)
    budget_key = "max_completion_tokens" if "max_completion_tokens" in first.body else "max_tokens"
    body[budget_key] = max_tokens
    content = pack_questions([it.question for it in items], labels)
    body["model"] = first.body.get("model")
    body["messages"] = [*items[0].prefix, {"role": "user", "content": content}]
    return Context(
        endpoint=CHAT,
        body=body,
        requested_model=first.requested_model,
        model=first.model,
        baseline_model=first.model,
        auto=first.auto,
        key_id=first.key_id,
        team=first.team,  # the budgets a library batch's packed call is admitted against
        tags=dict(first.tags),
        caller=first.caller,  # and the key (batch() admits each packed call)
    )


def _finish_reason(reply: Reply | None) -> str | None:
    if reply is None or reply.body is None:
        return None
    choices = reply.body.get("choices") or [{}]
    return choices[0].get("finish_reason")
