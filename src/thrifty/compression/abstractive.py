"""Abstractive compression: a cheap model rewrites long context to a target size, once.

Summaries are cached by the hash of (summariser, ratio, text): a long system prompt sent
with every request is summarised by the first request only (concurrent first requests
share one call). The call goes through the dispatch stage as a ``summarise`` attempt of
the request that made it, so its cost is compression's overhead in the ledger.

Protected segments (code, ``<keep>`` spans, JSON) are replaced by placeholders the model
must copy; a summary that loses one, comes back empty, or is not shorter is rejected
(cached as rejected too, so a bad summary is not paid for twice) and the message falls
back to the other compressors.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from thrifty.compression.config import CompressionConfig
from thrifty.compression.segments import Segment, split_segments
from thrifty.pipeline.worst_case import PAD, Bound
from thrifty.tokens import count_text

Summarise = Callable[[list[dict[str, str]], int], Awaitable[str]]
_PLACEHOLDER = "[[KEEP-{}]]"
_PLACEHOLDER_TOKENS = 8  # "[[KEEP-n]]" in place of one protected segment, at most
_INSTRUCTIONS = (
    "You shorten context for another AI model. Rewrite the text you are given in at most "
    "{words} words. Keep every instruction, constraint, fact, number, name and definition "
    "that could matter; drop repetition, filler and pleasantries. Copy every marker like "
    "[[KEEP-1]] exactly once, where it belongs. Reply with the rewritten text only."
)


@dataclass(frozen=True, slots=True)
class Summary:
    segments: list[Segment] | None
    """None when the summary was rejected (the message is left to the other passes)."""
    fresh: bool
    """True when this request paid for the call."""


class Summariser:
    """Summaries by content hash (LRU of ``max_entries``), one call per distinct text."""

    def __init__(self, model: str, ratio: float, max_entries: int) -> None:
        self.model = model
        self._ratio = ratio
        self._max = max_entries
        self._done: OrderedDict[str, list[Segment] | None] = OrderedDict()
        self._pending: dict[str, asyncio.Future[list[Segment] | None]] = {}

    def key(self, segments: list[Segment]) -> str:
        digest = hashlib.sha256(f"{self.model}\x00{self._ratio}\x00".encode())
        for segment in segments:
            digest.update(f"{segment.kind}\x00{segment.text}\x01".encode())
        return digest.hexdigest()

    async def summarise(
        self, segments: list[Segment], tokens: int, call: Summarise, count: Callable[[str], int]
    ) -> Summary:
        key = self.key(segments)
        if key in self._done:
            self._done.move_to_end(key)
            return Summary(self._done[key], fresh=False)
        if key in self._pending:
            return Summary(await asyncio.shield(self._pending[key]), fresh=False)
        future: asyncio.Future[list[Segment] | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            result, final = await self._call(segments, tokens, call, count)
        except BaseException:
            future.set_result(None)
            raise
        finally:
            self._pending.pop(key, None)
        if not future.done():
            future.set_result(result)
        if final:  # a failed call is tried again by the next request
            self._done[key] = result
            while len(self._done) > self._max:
                self._done.popitem(last=False)
        return Summary(result, fresh=True)

    async def _call(
        self, segments: list[Segment], tokens: int, call: Summarise, count: Callable[[str], int]
    ) -> tuple[list[Segment] | None, bool]:
        """The summary's segments (None: rejected) and whether that verdict is final."""
        text, protected = _with_placeholders(segments)
        target = target_tokens(tokens, self._ratio)
        words = max(10, int(target * 0.75))
        messages = [
            {"role": "system", "content": _INSTRUCTIONS.format(words=words)},
            {"role": "user", "content": text},
        ]
        answer = (await call(messages, answer_limit(target))).strip()
        if not answer:
            return None, False
        if count(answer) >= tokens:
            return None, True
        return _restore(answer, protected), True


def target_tokens(tokens: int, ratio: float) -> int:
    """The summary's target length for a text of ``tokens``."""
    return max(16, int(tokens / ratio))


def answer_limit(target: int) -> int:
    """The ``max_tokens`` a summary call with ``target`` asks for."""
    return int(target * 1.25) + 16


def summary_cost(
    bound: Bound, config: CompressionConfig, messages: list[dict[str, Any]], counted_as: str
) -> float:
    """The most the summary calls for ``messages`` can cost: one per message before the
    final question that may be summarised, quoting the message (+25%, plus a placeholder
    per protected segment) under the instructions (``counted_as``: the model whose
    tokenizer the compression stage counts with)."""
    abstractive = config.abstractive
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    roles = set(config.roles) & set(abstractive.roles)
    model = abstractive.model
    assert model is not None  # the schema requires a summariser when abstractive is on
    upstream = bound.upstream(model)
    instructions = count_text(_INSTRUCTIONS.format(words=10**9), upstream).tokens + 16
    total = 0.0
    for message in messages[:last_user]:
        text = message.get("content")
        if message.get("role") not in roles or not isinstance(text, str):
            continue
        tokens = math.ceil(count_text(text, bound.upstream(counted_as)).tokens * PAD)
        if tokens < abstractive.min_tokens:
            continue
        protected = sum(1 for s in split_segments(text) if s.protected)
        sent = instructions + math.ceil(count_text(text, upstream).tokens * PAD)
        sent += _PLACEHOLDER_TOKENS * protected
        limit = {"max_tokens": answer_limit(target_tokens(tokens, abstractive.ratio))}
        total += bound.call_cost(model, sent, limit)
    return total


def _with_placeholders(segments: list[Segment]) -> tuple[str, list[Segment]]:
    protected: list[Segment] = []
    parts: list[str] = []
    for segment in segments:
        if segment.protected:
            protected.append(segment)
            parts.append(_PLACEHOLDER.format(len(protected)))
        else:
            parts.append(segment.text)
    return "".join(parts), protected


def _restore(answer: str, protected: list[Segment]) -> list[Segment] | None:
    """Segments of the summary with the protected originals put back; None if one is lost."""
    out: list[Segment] = []
    pos = 0
    for number, segment in enumerate(protected, 1):
        marker = _PLACEHOLDER.format(number)
        at = answer.find(marker, pos)
        if at == -1 or answer.count(marker) != 1:
            return None
        out.append(Segment(answer[pos:at], "prose"))
        out.append(segment)
        pos = at + len(marker)
    if re.search(r"\[\[KEEP-\d+\]\]", answer[pos:]):
        return None
    out.append(Segment(answer[pos:], "prose"))
    return [s for s in out if s.text]
