"""``Thrifty.batch()``: many independent questions, as few calls as the model's limits allow.

The questions go straight to the named model (no cache, routing or cascade: the caller
chose the model and wants these answers together); each is still its own request in the
ledger, with its share of the packed call (rule in :mod:`thrifty.batching.packer`).

Admission applies per upstream call: the key must be allowed the model (checked once,
for the whole list), and every packed call and every question asked alone is admitted
on its own — one request against the rate limits, its worst case reserved against the
budgets and settled to what that call cost. A packed call that does not fit is not
made: its questions are then asked (and admitted) one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from thrifty.batching.packer import Packer
from thrifty.client.convert import to_chat_completion, to_openai_exception
from thrifty.client.core import make_context
from thrifty.errors import InvalidRequest, ThriftyError
from thrifty.governance.keys.identity import Caller
from thrifty.ledger.record import attempts_cost
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.ledger_stage import LedgerStage
from thrifty.pipeline.stage import CallNext
from thrifty.runtime import Runtime

__all__ = ["BatchAnswer", "batch_questions"]


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """One question's outcome.

    ``mode``: ``packed`` (answered in a shared call), ``reasked`` (the shared answer was
    missing or malformed, so it was asked alone), ``alone`` (too long to pack).
    ``cost`` is what the ledger charged this question (None when unpriced).
    """

    question: str
    request_id: str
    mode: str
    completion: ChatCompletion | None = None
    error: openai.APIError | None = None
    cost: float | None = None

    @property
    def text(self) -> str | None:
        if self.completion is None or not self.completion.choices:
            return None
        return self.completion.choices[0].message.content


async def batch_questions(
    runtime: Runtime,
    questions: Sequence[str],
    *,
    model: str,
    system: str | None = None,
    api_key: str | None = None,
    **params: Any,
) -> list[BatchAnswer]:
    """Answer ``questions`` (in order) with packed calls to ``model``.

    ``params`` are ordinary chat parameters shared by every question (``temperature``,
    ``max_tokens`` per answer, ``extra_headers`` for tags, ...). A question too long to
    pack, or a parameter that shapes the answer (tools, ``response_format``, ``stop``),
    makes that question an ordinary call.
    """
    if isinstance(questions, str) or not all(isinstance(q, str) for q in questions):
        raise to_openai_exception(
            InvalidRequest("questions must be a list of strings", param="questions"), CHAT
        )
    if params.get("stream"):
        raise to_openai_exception(InvalidRequest("batch() does not stream", param="stream"), CHAT)
    prefix = [{"role": "system", "content": system}] if system else []
    try:
        caller = runtime.authenticate(api_key, enforce=False)
        contexts = [
            make_context(
                runtime,
                CHAT,
                {**params, "model": model, "messages": [*prefix, {"role": "user", "content": q}]},
                caller,
            )
            for q in questions
        ]
    except ThriftyError as exc:
        raise to_openai_exception(exc, CHAT) from None
    packer = Packer(runtime.registry, runtime.config.batching.packing)
    dispatch = _admitted(
        runtime, caller, DispatchStage(runtime.registry, runtime.providers, runtime.config.retries)
    )
    if contexts:
        try:
            runtime.admission.check_model(contexts[0], caller, runtime.config)
        except ThriftyError as exc:
            raise to_openai_exception(exc, CHAT) from None
    items = [packer.item_of(ctx) for ctx in contexts]
    packable = [item for item in items if item is not None]
    results: dict[str, Reply | BaseException] = {}
    answered = await packer.answer(packable, dispatch) if packable else []
    for item, result in zip(packable, answered, strict=True):
        results[item.ctx.request_id] = result
    for ctx, item in zip(contexts, items, strict=True):
        if item is None:
            results[ctx.request_id] = await _alone(ctx, dispatch)
    ledger = LedgerStage(
        runtime.ledger, runtime.registry, capture_bodies=runtime.config.ledger.capture_bodies
    )
    return [
        await _record(ledger, ctx, results[ctx.request_id], question)
        for ctx, question in zip(contexts, questions, strict=True)
    ]


def _admitted(runtime: Runtime, caller: Caller, dispatch: DispatchStage) -> CallNext:
    """``dispatch`` behind admission; worst cases priced for a direct call (``batch()``
    skips caches, compression, routing, the cascade and the window)."""
    config = runtime.config
    direct = config.model_copy(
        update={
            section: getattr(config, section).model_copy(update={"enabled": False})
            for section in ("cache", "compression", "routing", "cascade", "batching")
        }
    )

    async def call(ctx: Context, call_next: Any = None) -> Reply:
        return await runtime.admission.admit(ctx, caller, direct, dispatch)

    return call


async def _alone(ctx: Context, dispatch: CallNext) -> Reply | BaseException:
    ctx.techniques["batch"] = {"mode": "alone"}
    try:
        return await dispatch(ctx)
    except ThriftyError as exc:
        return exc


async def _record(
    ledger: LedgerStage, ctx: Context, result: Reply | BaseException, question: str
) -> BatchAnswer:
    """Write the item's ledger row (through the ordinary ledger stage) and wrap it."""

    async def finished(_: Context) -> Reply:
        if isinstance(result, BaseException):
            raise result
        return result

    mode = str(ctx.techniques.get("batch", {}).get("mode", "alone"))
    cost, unpriced = attempts_cost(ctx.attempts)
    try:
        reply = await ledger(ctx, finished)
    except ThriftyError as exc:
        error = to_openai_exception(exc, CHAT)
        return BatchAnswer(question, ctx.request_id, mode, error=error, cost=cost)
    completion = to_chat_completion(reply.body or {})
    return BatchAnswer(
        question, ctx.request_id, mode, completion=completion, cost=None if unpriced else cost
    )
