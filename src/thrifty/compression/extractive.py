"""Query-aware extractive compression: keep the context units that best match the question.

The compressible messages are scored together (one budget for the whole context, so a
long document gives up more than a short instruction): every prose unit gets
``lexical_weight × BM25 + embedding_weight × cosine + position_weight × position``, plus a
share of its better neighbour's score. Units are taken best-first while they fit in
``prose tokens / ratio``, then emitted in their original order. Protected segments (code,
``<keep>`` spans, JSON) are always kept and do not count against the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from thrifty.compression.config import ExtractiveConfig
from thrifty.compression.scoring import Embed, bm25, position, similarity, smooth
from thrifty.compression.segments import Segment
from thrifty.compression.units import Unit, split_units

CountTokens = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where a unit lives: message, segment, and its index in that segment."""

    message: int
    segment: int
    index: int


def compress_extractive(
    documents: Sequence[Sequence[Segment]],
    query: str,
    config: ExtractiveConfig,
    count_tokens: CountTokens,
    embed: Embed | None,
    *,
    ratio: float | None = None,
) -> list[list[Segment]]:
    """``documents`` (one segment list per message) with their prose cut to the budget."""
    units: dict[tuple[int, int], list[Unit]] = {}
    slots: list[_Slot] = []
    for m, segments in enumerate(documents):
        for s, segment in enumerate(segments):
            if segment.kind != "prose":
                continue
            parts = split_units(segment.text)
            units[(m, s)] = parts
            slots.extend(_Slot(m, s, i) for i in range(len(parts)))
    if not slots:
        return [list(d) for d in documents]
    texts = [units[(x.message, x.segment)][x.index].body for x in slots]
    tokens = np.array(count_tokens([u.body + u.sep for u in _flat(units, slots)]))
    budget = tokens.sum() / (ratio or config.ratio)
    scores = score_units(texts, [x.message for x in slots], query, config, embed)
    keep = select(scores, tokens, budget)
    kept = {(x.message, x.segment, x.index) for x, k in zip(slots, keep, strict=True) if k}
    return [
        [_rebuild(seg, units.get((m, s)), m, s, kept) for s, seg in enumerate(segments)]
        for m, segments in enumerate(documents)
    ]


def score_units(
    texts: Sequence[str],
    groups: Sequence[int],
    query: str,
    config: ExtractiveConfig,
    embed: Embed | None,
) -> np.ndarray:
    """Combined score per unit; ``groups`` says which message each unit belongs to."""
    scores = config.lexical_weight * bm25(texts, query)
    if embed is not None and config.embedding_weight > 0:
        scores = scores + config.embedding_weight * similarity(texts, query, embed)
    if config.position_weight > 0:
        place = np.concatenate([position(n) for n in _run_lengths(groups)])
        scores = scores + config.position_weight * place
    return smooth(scores, groups, config.neighbour_weight)


def select(scores: np.ndarray, tokens: np.ndarray, budget: float) -> np.ndarray:
    """Best-first: take each unit that still fits; a mask in the original order."""
    keep = np.zeros(len(scores), dtype=bool)
    used = 0
    for i in np.argsort(-scores, kind="stable"):
        if used + tokens[i] <= budget:
            keep[i] = True
            used += int(tokens[i])
    return keep


def _flat(units: dict[tuple[int, int], list[Unit]], slots: list[_Slot]) -> list[Unit]:
    return [units[(x.message, x.segment)][x.index] for x in slots]


def _run_lengths(groups: Sequence[int]) -> list[int]:
    runs: list[int] = []
    previous = None
    for group in groups:
        if group == previous:
            runs[-1] += 1
        else:
            runs.append(1)
            previous = group
    return runs


def _rebuild(
    segment: Segment,
    parts: list[Unit] | None,
    m: int,
    s: int,
    kept: set[tuple[int, int, int]],
) -> Segment:
    """The kept units of a prose segment, between the segment's own leading and trailing
    whitespace (so code around it stays on its own lines); a dropped gap keeps its
    strongest line break."""
    if parts is None:
        return segment
    text = segment.text
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :] if text.strip() else ""
    out: list[str] = []
    pending: str | None = None
    for i, unit in enumerate(parts):
        if (m, s, i) in kept:
            if pending is not None:
                out.append(pending)
            out.append(unit.body)
            pending = unit.sep
        elif pending is not None and unit.sep.count("\n") > pending.count("\n"):
            pending = unit.sep
    core = "".join(out).strip()
    if not core:
        return Segment(lead + trail, "prose")
    return Segment(lead + core + trail, "prose")
