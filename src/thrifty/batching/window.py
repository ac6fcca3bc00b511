"""The ``batch`` stage: concurrent compatible requests share one upstream call.

Sits after routing (so "same model" means the routed model) and before the cascade. A
request takes part when it opts in (``x-thrifty-batch: window``, or ``batching.window
.default: true`` unless ``x-thrifty-batch: off``) and :meth:`Packer.item_of` accepts it
(single question, no tools, not streamed, short). The first request of a group opens a
window of ``window_ms``; requests with the same model, system prompt, parameters (and,
with ``scope: key``, caller key) that arrive before it closes join it. A full group
(``packing.max_batch_size``) closes early. A group of one goes on as an ordinary request.

Each caller awaits its own future; the group's work runs in a task of its own, so a
caller that hangs up cancels only its wait, never its neighbours' answers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from thrifty.batching.config import BatchingConfig
from thrifty.batching.packer import Packer, PackItem
from thrifty.batching.packing import INSTRUCTIONS, LABEL_TOKENS
from thrifty.errors import InvalidRequest
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.stage import CallNext
from thrifty.pipeline.worst_case import Bound, Spender
from thrifty.registry import ModelRegistry
from thrifty.tokens import count_messages

log = logging.getLogger(__name__)

BATCH_HEADER = "batch"  # x-thrifty-batch: window | off


@dataclass(slots=True)
class _Group:
    items: list[PackItem] = field(default_factory=list)
    waiters: list[asyncio.Future[Reply]] = field(default_factory=list)
    call_next: CallNext | None = None
    timer: asyncio.TimerHandle | None = None


class BatchWindowStage(Spender):
    """Groups compatible requests that arrive within a window into packed calls."""

    def __init__(self, config: BatchingConfig, packer: Packer) -> None:
        self._packing = config.packing
        self._window_s = config.window.window_ms / 1000
        self._default = config.window.default
        self._per_key = config.window.scope == "key"
        self._max = config.packing.max_batch_size
        self._packer = packer
        self._groups: dict[tuple[object, ...], _Group] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _wanted(self, ctx: Context) -> bool:
        control = ctx.controls.get(BATCH_HEADER)
        if control is None:
            return self._default
        if control not in ("window", "off"):
            raise InvalidRequest(
                f"x-thrifty-batch must be 'window' or 'off', got {control!r}",
                param="x-thrifty-batch",
                code="invalid_value",
            )
        return control == "window"

    def worst_case(self, ctx: Context, bound: Bound, models: set[str]) -> float:
        """The whole packed call this request may share (a share is at most the whole
        call): ``max_batch_size`` questions of ``max_question_tokens`` under the
        instructions, their answer budgets, priced as the answer is (0 when the request
        cannot be windowed). ``models``: where routing may have sent it."""
        control = ctx.controls.get(BATCH_HEADER)
        wanted = control == "window" or (control is None and self._default)
        body = ctx.body
        if ctx.endpoint != CHAT or not wanted or ctx.stream or body.get("n") not in (None, 1):
            return 0.0
        packing = self._packing
        size = packing.max_batch_size
        messages = body.get("messages") or []
        prefix = [m for m in messages[:-1] if m.get("role") in ("system", "developer")]
        worst_model = max(models, key=lambda m: count_messages(prefix, bound.upstream(m)).tokens)
        upstream = bound.upstream(worst_model)
        instructions = INSTRUCTIONS.format(n=size, example=f"[{size}|ffff]")
        fixed = count_messages([*prefix, {"role": "user", "content": instructions}], upstream)
        packed = fixed.tokens + size * (packing.max_question_tokens + LABEL_TOKENS + 2)
        asked = body.get("max_completion_tokens") or body.get("max_tokens")
        budget = asked if isinstance(asked, int) and asked > 0 else packing.answer_tokens
        packed_body = {**body, "max_tokens": size * (budget + LABEL_TOKENS), "n": 1}
        packed_body.pop("max_completion_tokens", None)
        return bound.answer(packed, packed_body)

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        if not self._wanted(ctx):
            return await call_next(ctx)
        item = self._packer.item_of(ctx)
        if item is None:
            return await call_next(ctx)
        key = (item.group, ctx.key_id if self._per_key else None)
        loop = asyncio.get_running_loop()
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(call_next=call_next)
            group.timer = loop.call_later(self._window_s, self._close, key)
        waiter: asyncio.Future[Reply] = loop.create_future()
        group.items.append(item)
        group.waiters.append(waiter)
        if len(group.items) >= self._max:
            self._close(key)
        return await waiter

    def _close(self, key: tuple[object, ...]) -> None:
        group = self._groups.pop(key, None)
        if group is None:
            return
        if group.timer is not None:
            group.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._serve(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, group: _Group) -> None:
        assert group.call_next is not None
        try:
            if len(group.items) == 1:
                results: list[Reply | BaseException] = []
                try:
                    results.append(await group.call_next(group.items[0].ctx))
                except Exception as exc:
                    results.append(exc)
            else:
                results = await self._packer.answer(group.items, group.call_next)
        except Exception as exc:  # a bug must not leave callers waiting forever
            log.exception("batch window failed")
            results = [exc] * len(group.items)
        for waiter, result in zip(group.waiters, results, strict=True):
            if waiter.done():  # the caller went away
                continue
            if isinstance(result, BaseException):
                waiter.set_exception(result)
            else:
                waiter.set_result(result)


def build_window(config: BatchingConfig, registry: ModelRegistry) -> BatchWindowStage:
    return BatchWindowStage(config, Packer(registry, config.packing))
