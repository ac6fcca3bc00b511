"""Query-aware extractive compression: keep the context units that best match the question.

The compressible messages are scored together (one budget for the whole context, so a
long document gives up more than a short instruction): every prose unit gets
``lexical_weight × BM25 + embedding_weight × cosine + position_weight × position``, plus
``neighbour_weight`` × its better neighbour's score, plus ``paragraph_weight`` × its
paragraph's BM25. Units are taken best-first while they fit in
``prose tokens / ratio``, then emitted in their original order. Protected segments (code,
``<keep>`` spans) are always kept and do not count against the budget; JSON blocks too,
unless ``json_members`` is on: then the top-level members of a JSON object or array are
units like sentences (the kept ones stay valid JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from thrifty.compression.config import ExtractiveConfig
from thrifty.compression.lossless import minify_json
from thrifty.compression.scoring import Embed, bm25, position, similarity, smooth
from thrifty.compression.segments import Segment
from thrifty.compression.units import Unit, split_units

CountTokens = Callable[[Sequence[str]], list[int]]
MIN_JSON_MEMBERS = 4


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
            if segment.kind == "prose":
                parts = split_units(segment.text)
            elif segment.kind == "json" and config.json_members:
                parts = json_members(segment.text) or []
            else:
                continue
            if not parts:
                continue
            units[(m, s)] = parts
            slots.extend(_Slot(m, s, i) for i in range(len(parts)))
    if not slots:
        return [list(d) for d in documents]
    flat = _flat(units, slots)
    texts = [u.body for u in flat]
    tokens = np.array(count_tokens([u.body + u.sep for u in flat]))
    budget = tokens.sum() / (ratio or config.ratio)
    scores = score_units(texts, [x.message for x in slots], query, config, embed)
    if config.paragraph_weight > 0:
        scores = scores + config.paragraph_weight * paragraph_scores(flat, slots, query)
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


def paragraph_scores(flat: Sequence[Unit], slots: Sequence[_Slot], query: str) -> np.ndarray:
    """Each unit gets its paragraph's BM25 (a paragraph ends at a line break): a relevant
    paragraph (a speaker's turn, a section) is kept together."""
    ids: list[int] = []
    paragraph = 0
    for k, slot in enumerate(slots):
        previous = slots[k - 1] if k else slot
        moved = (previous.message, previous.segment) != (slot.message, slot.segment)
        if k and ("\n" in flat[k - 1].sep or moved):
            paragraph += 1
        ids.append(paragraph)
    texts = ["" for _ in range(paragraph + 1)]
    for unit, pid in zip(flat, ids, strict=True):
        texts[pid] += unit.body + " "
    if len(texts) < 2:
        return np.zeros(len(flat))
    return bm25(texts, query)[np.asarray(ids)]


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
    if parts is not None and segment.kind == "json":
        members = [u.body for i, u in enumerate(parts) if (m, s, i) in kept]
        return Segment(parts[0].sep[0] + ",".join(members) + parts[0].sep[1], "json")
    return _rebuild_prose(segment, parts, m, s, kept)


def _rebuild_prose(
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


def json_members(text: str) -> list[Unit] | None:
    """Top-level members of a JSON object or array (minified), as units whose ``sep`` holds
    the container's brackets; None for a scalar or fewer than ``MIN_JSON_MEMBERS``."""
    flat = minify_json(text)
    if len(flat) < 2 or flat[0] not in "{[":
        return None
    members: list[str] = []
    depth, start, in_string, escaped = 0, 1, False, False
    for i, char in enumerate(flat):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                members.append(flat[start:i])
        elif char == "," and depth == 1:
            members.append(flat[start:i])
            start = i + 1
    if len(members) < MIN_JSON_MEMBERS:
        return None
    return [Unit(member, flat[0] + flat[-1]) for member in members]
