"""The compression stage: fewer input tokens for the context before the final question.

Per request (skipped for ``x-thrifty-compress: off``, non-chat endpoints, models outside
``applies_to``, or compressible context under ``min_tokens``):

0. a final user message holding a document and the question is split into the two
   (``question.py``); the document counts as context, the question stays as written;
1. lossless pass over every compressible message (roles in ``roles``, before the final
   user message, text content);
2. summaries (abstractive) for long messages of ``abstractive.roles``, reused by hash;
3. extractive pass, jointly, over the other long messages — except a repeated prefix
   the provider's cache makes cheaper as is (``prompt_cache.py``);
4. ``ctx.body`` gets the rewritten messages for the stages below; the caller's body is
   put back afterwards (the ledger captures what the caller sent).

Tells the ledger the removed tokens (``ctx.removed_input``): the baseline — the request
as sent — includes them, and the ledger credits compression with them at the baseline
model's price (cached-input price for a repeated prefix) minus the summary calls this
request paid for (``pipeline/attribution.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from thrifty.compression.abstractive import Summariser, summary_cost
from thrifty.compression.compressor import Compressor, Part
from thrifty.compression.config import CompressionConfig
from thrifty.compression.prompt_cache import PrefixTracker, extractive_beats_cache
from thrifty.compression.question import QuestionSplit, split_question
from thrifty.compression.scoring import Embed
from thrifty.errors import ThriftyError
from thrifty.messages import text_of
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.side_call import side_call
from thrifty.pipeline.stage import CallNext
from thrifty.pipeline.worst_case import Bound, Spender
from thrifty.registry import ModelRegistry
from thrifty.tokens import encoding_for_model
from thrifty.usage import Usage

log = logging.getLogger(__name__)

COMPRESS_HEADER = "compress"  # x-thrifty-compress: off
SUMMARY_PURPOSE = "summarise"


class CompressionStage(Spender):
    def __init__(
        self,
        config: CompressionConfig,
        registry: ModelRegistry,
        dispatch: DispatchStage,
        embed: Embed | None,
        summariser: Summariser | None,
        tracker: PrefixTracker | None,
    ) -> None:
        self._config = config
        self._registry = registry
        self._dispatch = dispatch
        self._embed = embed
        self._summariser = summariser
        self._tracker = tracker
        self._compressors: dict[str, Compressor] = {}

    def worst_case(self, ctx: Context, bound: Bound, models: set[str]) -> float:
        """Abstractive summaries: one call per message it may summarise (counted with the
        request's model's tokenizer, before routing)."""
        off = ctx.controls.get(COMPRESS_HEADER, "").strip().lower() == "off"
        if ctx.endpoint != CHAT or off or not self._config.abstractive.enabled:
            return 0.0
        messages = ctx.body.get("messages") or []
        return summary_cost(bound, self._config, messages, ctx.model)

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        if not self._applies(ctx):
            return await call_next(ctx)
        original = ctx.body
        try:
            rewritten = await self._compress(ctx, original["messages"])
        except ThriftyError:
            raise
        except Exception:  # compression is an optimisation: never fail the request for it
            log.warning("compression failed; request sent as is", exc_info=True)
            rewritten = None
        if rewritten is None:
            return await call_next(ctx)
        ctx.body = {**original, "messages": rewritten}
        try:
            reply = await call_next(ctx)
        finally:
            ctx.body = original
        info = ctx.techniques.get("compress", {})
        reply.headers["x-thrifty-compression"] = f"{info.get('before')}->{info.get('after')}"
        return reply

    def _applies(self, ctx: Context) -> bool:
        control = ctx.controls.get(COMPRESS_HEADER, "").strip().lower()
        if ctx.endpoint != CHAT or control in ("off", "false", "no", "0"):
            return False
        applies_to = self._config.applies_to
        return not applies_to or ctx.requested_model in applies_to

    async def _compress(
        self, ctx: Context, messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """The rewritten messages, or None to send the request as is.

        A final user message that holds a document and the question is split first
        (``question.py``): its context pieces become messages of their own for the passes
        below, and are joined back around the untouched question at the end."""
        last_user = _last_user_index(messages)
        split = self._split(messages, last_user)
        if split is None or last_user is None:
            return await self._compress_messages(ctx, messages)
        pieces = [p for p in (split.before, split.after) if p]
        final = messages[last_user]
        work = [
            *messages[:last_user],
            *({**final, "content": piece} for piece in pieces),
            {**final, "content": split.question},
            *messages[last_user + 1 :],
        ]
        out = await self._compress_messages(ctx, work)
        if out is None:
            return None
        ctx.techniques["compress"]["split"] = split.how
        return [
            *out[:last_user],
            {**final, "content": _rejoin(split, out[last_user : last_user + len(pieces)])},
            *out[last_user + len(pieces) + 1 :],
        ]

    def _split(self, messages: list[dict[str, Any]], last_user: int | None) -> QuestionSplit | None:
        """The final user message's context and question, when it holds both."""
        if last_user is None or not self._config.split_question:
            return None
        content = messages[last_user].get("content")
        if not isinstance(content, str) or "user" not in self._config.roles:
            return None
        return split_question(content, min_context_chars=self._config.min_message_tokens)

    async def _compress_messages(
        self, ctx: Context, messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | None:
        last_user = _last_user_index(messages)
        candidates = [
            i for i in range(last_user if last_user is not None else 0)
            if messages[i].get("role") in self._config.roles
            and isinstance(messages[i].get("content"), str) and messages[i]["content"]
        ]  # fmt: skip
        chars = sum(len(messages[i]["content"]) for i in candidates)
        if last_user is None or not candidates or chars < self._config.min_tokens:
            return None
        compressor = self._compressor(ctx.model)
        parts = await asyncio.to_thread(self._prepare, compressor, messages, candidates)
        before = sum(p.tokens_before for p in parts)
        if before < self._config.min_tokens:
            ctx.techniques["compress"] = {"result": "skip", "reason": "below min_tokens"}
            return None
        self._mark_cached_prefix(ctx, messages[:last_user], parts)
        await self._summaries(ctx, parts, compressor)
        self._choose_extractive(ctx, parts)
        query = text_of(messages[last_user].get("content"))
        await asyncio.to_thread(compressor.extract, parts, query)
        return self._finish(ctx, messages, parts, compressor)

    def _compressor(self, model: str) -> Compressor:
        """One per tokenizer (not per model name: pass-through names come from callers)."""
        encoding = encoding_for_model(model)[0].name
        if encoding not in self._compressors:
            self._compressors[encoding] = Compressor(self._config, model, self._embed)
        return self._compressors[encoding]

    @staticmethod
    def _prepare(
        compressor: Compressor, messages: list[dict[str, Any]], candidates: list[int]
    ) -> list[Part]:
        seen: set[str] = set()
        return [
            compressor.prepare(i, messages[i]["role"], messages[i]["content"], seen)
            for i in candidates
        ]

    def _mark_cached_prefix(
        self, ctx: Context, prefix: list[dict[str, Any]], parts: list[Part]
    ) -> None:
        """Mark the parts the provider likely serves from its cache (a repeated prefix)."""
        if self._tracker is None:
            return
        repeated = self._tracker.repeated(ctx.model, prefix)
        tokens = sum(p.tokens_before for p in parts if p.index < repeated)
        if tokens >= self._config.prompt_cache.min_tokens:
            for part in parts:
                part.cached_prefix = part.index < repeated

    async def _summaries(self, ctx: Context, parts: list[Part], compressor: Compressor) -> None:
        summariser, section = self._summariser, self._config.abstractive
        if summariser is None:
            return

        async def call(messages: list[dict[str, str]], max_tokens: int) -> str:
            return await side_call(self._dispatch, ctx, summariser.model, messages,
                                   purpose=SUMMARY_PURPOSE, max_tokens=max_tokens)  # fmt: skip

        for part in parts:
            tokens = compressor.count(part.text)
            if part.role not in section.roles or tokens < section.min_tokens:
                continue
            summary = await summariser.summarise(part.segments, tokens, call, compressor.count)
            part.notes["summary"] = (
                "rejected" if summary.segments is None else "new" if summary.fresh else "reused"
            )
            if summary.segments is not None:
                part.segments, part.method = summary.segments, "abstractive"

    def _choose_extractive(self, ctx: Context, parts: list[Part]) -> None:
        section = self._config.extractive
        if not section.enabled:
            return
        price = self._registry.get(ctx.model).price
        beats_cache = extractive_beats_cache(price, section.ratio)
        for part in parts:
            if part.method == "abstractive" or part.tokens_before < self._config.min_message_tokens:
                continue
            if part.cached_prefix and not beats_cache:
                part.notes["kept_for_prompt_cache"] = True
                continue
            part.extractive = True

    def _finish(
        self, ctx: Context, messages: list[dict[str, Any]], parts: list[Part], c: Compressor
    ) -> list[dict[str, Any]] | None:
        out = list(messages)
        removed = removed_cached = after = 0
        methods: dict[str, int] = {}
        for part in parts:
            text = part.text
            tokens = c.count(text) if text != part.original else part.tokens_before
            if tokens >= part.tokens_before:
                text, tokens = part.original, part.tokens_before
            else:
                out[part.index] = {**messages[part.index], "content": text}
                methods[part.method] = methods.get(part.method, 0) + 1
            after += tokens
            removed += part.tokens_before - tokens
            if part.cached_prefix:
                removed_cached += part.tokens_before - tokens
        before = sum(p.tokens_before for p in parts)
        ctx.techniques["compress"] = {
            "result": "compressed" if removed else "unchanged", "before": before, "after": after,
            "methods": methods, **_notes(parts),
        }  # fmt: skip
        if not removed:
            return None
        ctx.removed_input = Usage(input_tokens=removed, cached_input_tokens=removed_cached)
        return out


def _rejoin(split: QuestionSplit, context: list[dict[str, Any]]) -> str:
    """The final message again: compressed context around the question as written, with
    the whitespace that separated them kept (a compressed piece may lose its edges)."""
    texts = iter(str(m["content"]) for m in context)
    before = next(texts) if split.before else ""
    after = next(texts) if split.after else ""
    if before and split.before[-1].isspace() and not before[-1].isspace():
        before += split.before[len(split.before.rstrip()) :]
    if after and split.after[0].isspace() and not after[0].isspace():
        after = split.after[: len(split.after) - len(split.after.lstrip())] + after
    return before + split.question + after


def _last_user_index(messages: list[dict[str, Any]]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return None


def _notes(parts: list[Part]) -> dict[str, Any]:
    notes: dict[str, Any] = {}
    summaries = [p.notes["summary"] for p in parts if "summary" in p.notes]
    if summaries:
        notes["summaries"] = summaries
    if any(p.notes.get("kept_for_prompt_cache") for p in parts):
        notes["kept_for_prompt_cache"] = [
            p.index for p in parts if p.notes.get("kept_for_prompt_cache")
        ]
    return notes
