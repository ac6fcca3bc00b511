"""What the quality predictor sees in a prompt: sparse hashed features, no vocabulary file.

Three blocks, each scaled to unit length so no block drowns the others:

* **words**: lower-cased word 1- and 2-grams, hashed (crc32) into ``2**BITS`` slots,
  weighted ``(1 + log tf) × idf`` (idf learned on the training prompts); a slot seen in
  fewer than ``MIN_DF`` training prompts is left out of every row, in training and at
  decision time alike (a weight learned from one or two prompts is noise; on 10,000
  MMLU prompts they are 71% of the slots and 14% of the nonzeros, and dropping them
  cost no AUC in issue #19's experiment);
* **structure**: generic shape signals (length, lines, digits, code fences, math
  symbols, listed choices, questions, non-ASCII share), standardised on the training set;
* **tags**: one slot per request tag ``key=value`` (an app's feature or endpoint name is
  a strong, legitimate signal); the L2 penalty shrinks a rare tag's weight towards zero,
  i.e. towards the text-only model.

A row is a list of (slot, value) pairs; :func:`to_csr` packs rows for the solver.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

BITS = 20
SLOTS = 1 << BITS
STRUCTURE_BASE = SLOTS  # structure features live just past the hashed words
TAG_SALT = "\x00tag:"
BIAS_SLOT = SLOTS + 64
MIN_DF = 3  # word slots seen in fewer training prompts are dropped (see the module doc)

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
_CHOICE = re.compile(r"(?m)^\s*\(?[A-Ha-h1-8][).:]\s")
_MATH = re.compile(r"[=+\-*/^<>∑∫√]|\\frac|\\sum|\d\s*[x×]\s*\d")

STRUCTURE_NAMES = (
    "log_chars", "log_words", "log_lines", "code_fence", "digit_share", "math_symbols",
    "choices", "questions", "non_ascii", "mean_word_len", "upper_share", "url",
)  # fmt: skip


Counts = tuple[np.ndarray, np.ndarray]


def _slot(token: str) -> int:
    return zlib.crc32(token.encode()) & (SLOTS - 1)


def word_counts(text: str) -> Counts:
    """Hashed 1- and 2-gram counts of ``text``: (slots ascending, counts)."""
    words = _WORD.findall(text.lower())
    hashed = [_slot(w) for w in words]
    hashed += [_slot(f"{a} {b}") for a, b in itertools.pairwise(words)]
    slots, counts = np.unique(np.array(hashed, dtype=np.int64), return_counts=True)
    return slots.astype(np.int32), counts.astype(np.float32)


def structure(text: str) -> np.ndarray:
    """The raw (unstandardised) structure features of ``text`` (character counts by
    ``map`` over str methods: a generator per character was most of a tune's features)."""
    n = max(1, len(text))
    words = text.split()
    return np.array(
        [
            math.log1p(len(text)),
            math.log1p(len(words)),
            math.log1p(text.count("\n")),
            float("```" in text),
            sum(map(str.isdigit, text)) / n,
            math.log1p(len(_MATH.findall(text))),
            math.log1p(len(_CHOICE.findall(text))),
            math.log1p(text.count("?")),
            (len(text) - len(text.encode("ascii", "ignore"))) / n,  # non-ASCII characters
            sum(map(len, words)) / max(1, len(words)) / 10.0,
            sum(map(str.isupper, text)) / n,
            float("http://" in text or "https://" in text),
        ],
        dtype=np.float64,
    )


@functools.lru_cache(maxsize=32_768)
def text_features(text: str) -> tuple[Counts, np.ndarray]:
    """(word counts, structure) of ``text``, remembered: the tuner fits one predictor per
    fold on overlapping prompts. Callers must not modify the results."""
    return word_counts(text), structure(text)


def tag_slots(tags: Mapping[str, str]) -> list[int]:
    return sorted({_slot(f"{TAG_SALT}{k}={v}") for k, v in tags.items()})


class Featurizer:
    """Turns (text, tags) into a sparse row; ``fit`` learns idf and the structure scale."""

    def __init__(
        self,
        idf_slots: np.ndarray,
        idf: np.ndarray,
        mean: np.ndarray,
        std: np.ndarray,
        use_tags: bool,
        use_words: bool = True,
        min_df: int = 1,
    ) -> None:
        self.idf_slots = idf_slots.astype(np.int64)
        self.idf = idf.astype(np.float64)
        self.default_idf = float(idf.max()) if len(idf) else 1.0  # an unseen word is rare
        self.mean, self.std = mean.astype(np.float64), std.astype(np.float64)
        self.use_tags = use_tags
        self.use_words = use_words  # off: structure (and tags) only, e.g. the shipped prior
        # > 1: the vocabulary was pruned, a slot outside it is dropped (1: files saved
        # before pruning, where an unseen slot is kept with the largest idf)
        self.min_df = min_df

    @classmethod
    def fit(
        cls,
        counts: Sequence[Counts],
        shapes: np.ndarray,
        use_tags: bool,
        use_words: bool = True,
        min_df: int = MIN_DF,
    ) -> Featurizer:
        every = [s for s, _ in counts]
        slots, freq = np.unique(
            np.concatenate(every) if every else np.zeros(0, np.int64), return_counts=True
        )
        idf = np.log((1 + len(counts)) / (1 + freq)) + 1.0
        kept = freq >= min_df
        slots, idf = slots[kept], idf[kept]
        mean = shapes.mean(axis=0) if len(shapes) else np.zeros(len(STRUCTURE_NAMES))
        std = shapes.std(axis=0) + 1e-6 if len(shapes) else np.ones(len(STRUCTURE_NAMES))
        if not use_words:
            slots, idf = slots[:0], idf[:0]
        return cls(slots, idf, mean, std, use_tags, use_words, min_df)

    def _idf_of(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(idf, in the vocabulary) of each slot."""
        if not len(self.idf_slots):
            return np.full(len(slots), self.default_idf), np.zeros(len(slots), bool)
        at = np.minimum(np.searchsorted(self.idf_slots, slots), len(self.idf_slots) - 1)
        known = self.idf_slots[at] == slots
        return np.where(known, self.idf[at], self.default_idf), known

    def row(
        self, counts: Counts, shape: np.ndarray, tags: Mapping[str, str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(slots, values) of one prompt."""
        slots, tf = counts[0].astype(np.int64), counts[1].astype(np.float64)
        if not self.use_words:
            slots, tf = slots[:0], tf[:0]
        idf, known = self._idf_of(slots)
        if self.min_df > 1:
            slots, tf, idf = slots[known], tf[known], idf[known]
        values = (1.0 + np.log(tf)) * idf
        norm = float(np.sqrt((values**2).sum()))
        if norm > 0:
            values = values / norm
        z = (shape - self.mean) / self.std
        z = np.clip(z, -5, 5) / math.sqrt(len(z))
        parts_s = [slots, STRUCTURE_BASE + np.arange(len(z)), np.array([BIAS_SLOT])]
        parts_v = [values, z, np.array([1.0])]
        if self.use_tags and tags:
            t = np.array(tag_slots(tags), dtype=np.int64)
            parts_s.append(t)
            parts_v.append(np.full(len(t), 1.0 / math.sqrt(len(t))))
        return np.concatenate(parts_s), np.concatenate(parts_v)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "idf_slots": self.idf_slots,
            "idf": self.idf.astype(np.float32),
            "shape_mean": self.mean,
            "shape_std": self.std,
            "use_tags": np.array(self.use_tags),
            "use_words": np.array(self.use_words),
            "min_df": np.array(self.min_df),
        }

    @classmethod
    def from_arrays(cls, data: Mapping[str, np.ndarray]) -> Featurizer:
        return cls(
            data["idf_slots"],
            data["idf"],
            data["shape_mean"],
            data["shape_std"],
            bool(data["use_tags"]),
            bool(data["use_words"]) if "use_words" in data else True,
            int(data["min_df"]) if "min_df" in data else 1,
        )


def to_csr(rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """(indptr, slots, values) of ``rows``."""
    lengths = np.array([len(s) for s, _ in rows], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    slots = np.concatenate([s for s, _ in rows]) if rows else np.zeros(0, np.int64)
    values = np.concatenate([v for _, v in rows]) if rows else np.zeros(0)
    return indptr, slots, values
