"""Scores of context units against the final question: lexical (BM25), embedding, position.

Each score is scaled to [0, 1] within the request, so the config weights mean the same on
every request. BM25's document statistics come from the request's own units: the context
is the corpus, which is what makes a rare word of the question decisive.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP_WORDS = """a an the and or but if of to in on at by for with from as is are was were be been
    being it its this that these those there here what which who whom whose when where why
    how do does did not no yes can could should would will shall may might must i you he she
    we they me him her us them my your his our their than then so such into about over
    under up down out just only also very any all some each other more most"""
_STOP = frozenset(_STOP_WORDS.split())
K1, B = 1.2, 0.75

Embed = Callable[[Sequence[str]], np.ndarray]


def terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def bm25(units: Sequence[str], query: str) -> np.ndarray:
    """BM25 of each unit for ``query`` (unique query terms), divided by the best score."""
    docs = [Counter(terms(u)) for u in units]
    if not docs:
        return np.zeros(0)
    lengths = np.array([sum(d.values()) for d in docs], dtype=float)
    average = float(lengths.mean()) or 1.0
    n = len(docs)
    scores = np.zeros(n)
    for term in set(terms(query)):
        df = sum(1 for d in docs if term in d)
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        tf = np.array([d.get(term, 0) for d in docs], dtype=float)
        scores += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths / average))
    top = scores.max()
    return scores / top if top > 0 else scores


def similarity(units: Sequence[str], query: str, embed: Embed) -> np.ndarray:
    """Cosine of each unit's embedding with the question's, min-max scaled."""
    if not units:
        return np.zeros(0)
    vectors = embed([*units, query])
    cos = vectors[:-1] @ vectors[-1]
    low, high = float(cos.min()), float(cos.max())
    return (cos - low) / (high - low) if high > low else np.zeros(len(units))


def position(count: int) -> np.ndarray:
    """1 at a message's first and last unit, 0 in its middle (U-shaped)."""
    if count <= 1:
        return np.ones(count)
    place = np.arange(count) / (count - 1)
    return (2 * np.abs(place - 0.5)) ** 2


def smooth(scores: np.ndarray, groups: Sequence[int], share: float) -> np.ndarray:
    """Each unit gains ``share`` × its better neighbour's score (same message only)."""
    if share <= 0 or len(scores) < 2:
        return scores
    left = np.concatenate([[0.0], scores[:-1]])
    right = np.concatenate([scores[1:], [0.0]])
    group = np.asarray(groups)
    left[1:][group[1:] != group[:-1]] = 0.0
    right[:-1][group[:-1] != group[1:]] = 0.0
    return scores + share * np.maximum(left, right)
