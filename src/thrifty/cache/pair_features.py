"""Features of a (new question, cached question) pair for the semantic cache's pair check.

The shipped embedder is a bag of tokens, blind to word order; these features are what it
cannot see: lexical overlap at word, bigram and trigram level, how much of the shared
wording keeps its order (longest common subsequence, concordant pairs, breakpoints),
position-weighted embeddings (front-weighted and back-weighted means of the token rows,
so "A sued B" and "B sued A" differ), what the differing words mean (the embedding of the
words only one side has), entity overlap. Each text is parsed once (LRU-cached); a pair
costs tens of microseconds, see ``bench/semantic_cache.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from thrifty.cache.guards import _DIRECTIONAL, _NEGATORS, _STOP, _parse
from thrifty.embeddings import get_embedder

if TYPE_CHECKING:
    from thrifty.embeddings import StaticEmbedder

FEATURES: tuple[str, ...] = (
    "similarity",
    "jaccard_words",
    "jaccard_content",
    "jaccard_bigrams",
    "jaccard_trigrams",
    "lcs_content",
    "lcs_words",
    "concordant",
    "breakpoints",
    "only_query",
    "only_cached",
    "length_ratio",
    "front_cosine",
    "back_cosine",
    "diff_cosine",
    "diff_empty",
    "entity_jaccard",
    "same_content",
    "neighbours_kept",
    "moved",
    "pivot_swap",
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_MAX_WORDS = 80  # longer texts are cut: bounds the quadratic LCS


@dataclass(frozen=True, slots=True)
class _Text:
    words: tuple[str, ...]
    content: tuple[str, ...]
    bigrams: frozenset[tuple[str, str]]
    trigrams: frozenset[tuple[str, str, str]]
    front: np.ndarray
    back: np.ndarray
    entities: frozenset[str]


def _content(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(w for w in words if w in _DIRECTIONAL or (w not in _STOP and w not in _NEGATORS))


@lru_cache(maxsize=8192)
def _text(text: str) -> _Text:
    words = tuple(_WORD.findall(text.lower()))[:_MAX_WORDS]
    rows = _embedder().token_vectors(text)
    n = len(rows)
    if n:
        weight = (np.arange(n, dtype=np.float32) + 0.5) / n
        front, back = (1.0 - weight) @ rows, weight @ rows
        front /= max(float(np.linalg.norm(front)), 1e-12)
        back /= max(float(np.linalg.norm(back)), 1e-12)
    else:
        front = back = np.zeros(rows.shape[1], dtype=np.float32)
    return _Text(
        words=words,
        content=_content(words),
        bigrams=frozenset(pairwise(words)),
        trigrams=frozenset(zip(words, words[1:], words[2:], strict=False)),
        front=front,
        back=back,
        entities=_parse(text).entities,
    )


def _embedder() -> StaticEmbedder:
    return get_embedder()


def _jaccard(a: frozenset[object] | set[object], b: frozenset[object] | set[object]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _lcs(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Length of the longest common subsequence, bit-parallel (Crochemore et al. 2001):
    one big-int step per word of ``a`` instead of a row of the quadratic table."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, word in enumerate(b):
        masks[word] = masks.get(word, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for word in a:
        match = v & masks.get(word, 0)
        v = ((v + match) | (v - match)) & full
    return len(b) - v.bit_count()


def _once(words: tuple[str, ...]) -> set[str]:
    return {w for w, n in Counter(words).items() if n == 1}


def _order(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[float, float]:
    """(share of concordant pairs, share of breakpoints) over words each text has once."""
    shared = _once(a) & _once(b)
    if len(shared) < 2:
        return 1.0, 0.0
    pos_b = {w: i for i, w in enumerate(b) if w in shared}
    seq = [pos_b[w] for w in a if w in shared]
    pairs = concordant = 0
    for i, x in enumerate(seq):
        for y in seq[i + 1 :]:
            pairs += 1
            concordant += x < y
    ranks = {p: r for r, p in enumerate(sorted(seq))}
    ranked = [ranks[p] for p in seq]
    breaks = sum(1 for x, y in pairwise(ranked) if y != x + 1)
    return concordant / pairs, breaks / (len(seq) - 1)


def _neighbours_kept(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Share of the words both texts have once whose left and right neighbours agree.

    A swapped argument changes its neighbours ("from Paris to Rome" / "from Rome to
    Paris"); a clause moved as a block keeps them except at its two ends.
    """
    context_b = {}
    for i, w in enumerate(b):
        context_b[w] = None if w in context_b else (b[i - 1] if i else "", b[i + 1 : i + 2])
    kept = total = 0
    seen: set[str] = set()
    for i, w in enumerate(a):
        if w in seen or context_b.get(w) is None:
            seen.add(w)
            continue
        seen.add(w)
        total += 1
        kept += context_b[w] == (a[i - 1] if i else "", a[i + 1 : i + 2])
    return kept / total if total else 1.0


def _moves(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[float, float]:
    """(share of shared words out of order, 1.0 if two swap around a pivot word).

    Out of order = not in the longest run kept in order (shared words each text has once).
    A pivot swap is an inverted pair with a third word between them in both texts.
    """
    single_b, single_a = _once(b), _once(a)
    once_b = {w: i for i, w in enumerate(b) if w in single_b}
    seq = [once_b[w] for w in a if w in once_b and w in single_a]
    if len(seq) < 2:
        return 0.0, 0.0
    tails: list[int] = []
    for x in seq:
        k = _bisect(tails, x)
        tails[k : k + 1] = [x]
    moved = 1.0 - len(tails) / len(seq)
    for i, first in enumerate(seq):  # O(n²): keep the largest value below ``first`` seen
        between = -1  # since i; a later smaller value below it has a pivot between them
        for later in seq[i + 1 :]:
            if later < first:
                if between > later:
                    return moved, 1.0
                between = max(between, later)
    return moved, 0.0


def _bisect(tails: list[int], x: int) -> int:
    low, high = 0, len(tails)
    while low < high:
        mid = (low + high) // 2
        if tails[mid] < x:
            low = mid + 1
        else:
            high = mid
    return low


def _diff_cosine(only_a: set[str], only_b: set[str]) -> float:
    if not only_a or not only_b:
        return 0.0
    vecs = _embedder().embed_cached([" ".join(sorted(only_a)), " ".join(sorted(only_b))])
    return float(vecs[0] @ vecs[1])


def pair_features(query: str, cached: str, similarity: float) -> np.ndarray:
    """The ``FEATURES`` of one pair, float64 ``(len(FEATURES),)``."""
    a, b = _text(query), _text(cached)
    set_a, set_b = set(a.content), set(b.content)
    only_a, only_b = set_a - set_b, set_b - set_a
    concordant, breakpoints = _order(a.content, b.content)
    longest = max(len(a.content), len(b.content), 1)
    return np.array(
        [
            similarity,
            _jaccard(set(a.words), set(b.words)),
            _jaccard(set_a, set_b),
            _jaccard(a.bigrams, b.bigrams),
            _jaccard(a.trigrams, b.trigrams),
            _lcs(a.content, b.content) / longest,
            _lcs(a.words, b.words) / max(len(a.words), len(b.words), 1),
            concordant,
            breakpoints,
            len(only_a) / max(len(set_a), 1),
            len(only_b) / max(len(set_b), 1),
            min(len(a.words), len(b.words)) / max(len(a.words), len(b.words), 1),
            float(a.front @ b.front),
            float(a.back @ b.back),
            _diff_cosine(only_a, only_b),
            float(not only_a and not only_b),
            _jaccard(a.entities, b.entities),
            float(a.content == b.content),
            _neighbours_kept(a.words, b.words),
            *_moves(a.content, b.content),
        ],
        dtype=np.float64,
    )
