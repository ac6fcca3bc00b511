"""``Thrifty.batch()``: many independent questions, as few calls as the model's limits allow.

The questions go straight to the named model (no cache, routing or cascade: the caller
chose the model and wants these answers together); each is still its own request in the
ledger, with its share of the packed call (rule in :mod:`thrifty.batching.packer`).

It is the ordinary pipeline with the packer in place of the techniques: each question
runs ``ledger -> packing -> governance -> dispatch``. The packing stage waits for every
question, then answers them through the rest of the chain with packed calls (and asks
alone what cannot be packed or came back unusable).

Admission applies per upstream call: the key must be allowed the model (checked once,
for the whole list), and every packed call and every question asked alone is admitted
on its own by the governance stage — one request against the rate limits, its worst
case (a direct call) reserved against the budgets and settled to what that call cost. A
packed call that does not fit is not made: its questions are then asked (and admitted)
one by one. A question refused still gets its ledger row (the error), as any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from thrifty.batching.packer import Packer, PackItem
from thrifty.client.convert import to_chat_completion, to_openai_exception
from thrifty.client.core import make_context
from thrifty.errors import InvalidRequest, ThriftyError
from thrifty.ledger.record import attempts_cost
from thrifty.pipeline.chain import Pipeline
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.ledger_stage import LedgerStage
from thrifty.pipeline.stage import CallNext, Stage
from thrifty.runtime import Runtime
from thrifty.techniques import governance_stage

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
    if contexts:
        try:
            runtime.check_model(contexts[0], caller)
        except ThriftyError as exc:
            raise to_openai_exception(exc, CHAT) from None
    for ctx in contexts:
        ctx.caller = caller
    packing = _Packing(Packer(runtime.registry, runtime.config.batching.packing), contexts)
    stages: list[Stage] = [
        LedgerStage(
            runtime.ledger, runtime.registry, capture_bodies=runtime.config.ledger.capture_bodies
        ),
        packing,
    ]
    if runtime.admission.active:
        # priced for a direct call: batch() skips caches, compression, routing, the
        # cascade and the window
        tries = runtime.config.retries.max_attempts
        stages.append(governance_stage(runtime.admission, runtime.registry, [], tries))
    dispatch = DispatchStage(runtime.registry, runtime.providers, runtime.config.retries)
    pipeline = Pipeline(stages, dispatch)
    return list(
        await asyncio.gather(
            *(
                _answer(pipeline, ctx, question)
                for ctx, question in zip(contexts, questions, strict=True)
            )
        )
    )


class _Packing:
    """The stage in place of the techniques: once every question has arrived, answers
    the packable ones with packed calls, then the others alone, through ``call_next``
    (governance, dispatch), and hands each question its own reply or error."""

    def __init__(self, packer: Packer, contexts: Sequence[Context]) -> None:
        self._packer = packer
        self._order = [ctx.request_id for ctx in contexts]
        self._waiting: dict[str, tuple[Context, asyncio.Future[Reply]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[ctx.request_id] = (ctx, waiter)
        if len(self._waiting) == len(self._order):
            # in a task of its own: every question's waiter is resolved in order
            self._task = asyncio.get_running_loop().create_task(self._answer(call_next))
        return await waiter

    async def _answer(self, call_next: CallNext) -> None:
        contexts = [self._waiting[request_id][0] for request_id in self._order]
        items = [self._packer.item_of(ctx) for ctx in contexts]
        packable: list[PackItem] = [item for item in items if item is not None]
        results: dict[str, Reply | BaseException] = {}
        try:
            answered = await self._packer.answer(packable, call_next) if packable else []
            for packed, result in zip(packable, answered, strict=True):
                results[packed.ctx.request_id] = result
            for ctx, item in zip(contexts, items, strict=True):
                if item is None:
                    results[ctx.request_id] = await _alone(ctx, call_next)
        except BaseException as exc:  # a bug must not leave the questions waiting
            for request_id in self._order:
                results.setdefault(request_id, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            for request_id in self._order:
                waiter = self._waiting[request_id][1]
                result = results.get(request_id, RuntimeError("not answered"))
                if waiter.done():
                    continue
                if isinstance(result, Exception):
                    waiter.set_exception(result)
                elif isinstance(result, BaseException):  # cancelled: so are the questions
                    waiter.cancel()
                else:
                    waiter.set_result(result)


async def _alone(ctx: Context, call_next: CallNext) -> Reply | BaseException:
    ctx.techniques["batch"] = {"mode": "alone"}
    try:
        return await call_next(ctx)
    except ThriftyError as exc:
        return exc


async def _answer(pipeline: Pipeline, ctx: Context, question: str) -> BatchAnswer:
    """Run the question's pipeline (its ledger row is written there) and wrap the result."""
    try:
        reply = await pipeline.run(ctx)
    except ThriftyError as exc:
        mode = str(ctx.techniques.get("batch", {}).get("mode", "alone"))
        cost, _ = attempts_cost(ctx.attempts)
        error = to_openai_exception(exc, CHAT)
        return BatchAnswer(question, ctx.request_id, mode, error=error, cost=cost)
    mode = str(ctx.techniques.get("batch", {}).get("mode", "alone"))
    cost, unpriced = attempts_cost(ctx.attempts)
    completion = to_chat_completion(reply.body or {})
    return BatchAnswer(
        question, ctx.request_id, mode, completion=completion, cost=None if unpriced else cost
    )
