"""Labelled question pairs for the semantic cache's pair check, split train / dev / test.

One place decides the splits, so the training script (``scripts/train_pair_check.py``)
and the bench (``bench/semantic_cache.py``) can never disagree about which rows were seen:
the model is fitted on ``train``, its thresholds are chosen on ``dev``, and every number
the docs quote is on ``test``.

Sources (``shared/data``; each folder's README has source and license):

* ``paws``: PAWS-Wiki dev + test (16,000 adversarial pairs; label 1 = same meaning). A
  sentence can occur in several pairs, so pairs are grouped by connected sentences and a
  whole group goes to one split (no sentence is in two splits). The 61 pairs whose two
  sentences are identical once lower-cased and stripped of punctuation are left out
  (52 labelled paraphrase, 9 labelled not: no text method can tell those apart, an exact
  cache would serve them too, and "not the same" is a labelling error there).
* ``gptcache``: GPTCache's 999 (origin, similar) pairs. Positive = similar vs its origin;
  negative = similar vs the nearest *other* origin among all 999 (by the shipped
  embedder). Grouped by origin text. The data states many facts twice in other words,
  so the nearest other origin is often the same fact: ``bench/data/gptcache_nearest_audit
  .jsonl`` judges, by reading them, every dev and test negative that the guards pass at
  similarity ≥ 0.85 (80 pairs; 72 state the same fact). With ``audited=True`` (default)
  those 72 are left out of dev and test: they are neither right nor wrong to serve.
  Train keeps its raw labels (unread, noisy).
* ``guard_pairs``: ``bench/data/guard_pairs.jsonl`` (hand-written negation, number, unit,
  entity, swapped-argument, antonym pairs and paraphrases): its ``report`` rows are the
  test split; its ``design`` rows (on which the guards were designed) go to train and dev.
* ``near_miss``: ``bench/data/near_miss_pairs.jsonl``, the same layout: lower-case
  entities swapped (dogs/cats), arithmetic operators, comparatives, antonyms and lexical
  negation, and paraphrases of the same questions; its ``report`` rows include the three
  near misses an outside set found served (dogs/cats grapes, 12 times/plus 13, avoid/take
  ibuprofen).
* ``rewrites``: the same question retyped (lower case, contractions, dropped articles,
  punctuation, a "please"), generated from the GPTCache and PAWS sentences of the same
  split: positives that look like nothing in PAWS, where every near-identical pair with
  the same words is adversarial.

Splits are by a stable hash of the group key (60 / 20 / 20), not by a random generator,
so they do not change when a source gains rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")
BENCH_DATA = Path(__file__).resolve().parents[3] / "bench" / "data"
GUARD_PAIRS = BENCH_DATA / "guard_pairs.jsonl"
NEAR_MISS_PAIRS = BENCH_DATA / "near_miss_pairs.jsonl"
AUDIT = BENCH_DATA / "gptcache_nearest_audit.jsonl"


@dataclass(frozen=True, slots=True)
class Pair:
    query: str  # the new question
    cached: str  # the stored question
    same: bool  # one answer serves both
    source: str  # paws | gptcache | guard_pairs
    kind: str  # paws-0/1, paraphrase, nearest, or a guard-pair kind


def split_of(key: str, shares: tuple[float, float] = (0.6, 0.8)) -> Split:
    """Stable split for a group key: train below ``shares[0]``, dev below ``shares[1]``."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "train" if u < shares[0] else "dev" if u < shares[1] else "test"


def _normal(text: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


def paws_pairs(data: Path) -> dict[Split, list[Pair]]:
    rows: list[tuple[str, str, bool]] = []
    for name in ("dev.tsv", "test.tsv"):
        for line in (data / "paws_wiki" / name).read_text("utf-8").splitlines()[1:]:
            _, s1, s2, label = line.split("\t")
            if _normal(s1) != _normal(s2):
                rows.append((s1, s2, label == "1"))
    group_key = connected_groups((s1, s2) for s1, s2, _ in rows)
    out: dict[Split, list[Pair]] = {s: [] for s in SPLITS}
    for s1, s2, same in rows:
        split = split_of("paws:" + group_key[s1])
        out[split].append(Pair(s1, s2, same, "paws", f"paws-{int(same)}"))
    return out


def connected_groups(edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each text's group key (the smallest text of its group): texts that share a pair,
    directly or through others, are one group."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent[root(a)] = root(b)
    members: dict[str, list[str]] = {}
    for text in list(parent):
        members.setdefault(root(text), []).append(text)
    smallest = {r: min(m) for r, m in members.items()}
    return {text: smallest[root(text)] for text in parent}


def cross_folds(pairs: Sequence[Pair], folds: int = 5, repeat: int = 0) -> list[int]:
    """A fold per pair for cross-fitting within a split: connected texts share a fold, so
    no text is both fitted on and scored (as the splits keep them apart). Each ``repeat``
    deals the groups into folds anew (repeated cross-fitting)."""
    key = connected_groups((p.query, p.cached) for p in pairs)
    salt = f"{repeat}:" if repeat else ""
    return [
        int.from_bytes(hashlib.sha256((salt + key[p.query]).encode("utf-8")).digest()[:8], "big")
        % folds
        for p in pairs
    ]


def same_fact_pairs(path: Path = AUDIT) -> set[tuple[str, str]]:
    """(query, cached) negatives that the audit found to state the same fact."""
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return {(r["query"], r["cached"]) for r in rows if r["same_fact"]}


def gptcache_pairs(
    data: Path, embed: Callable[[Sequence[str]], Any], *, audited: bool = True
) -> dict[Split, list[Pair]]:
    import numpy as np

    mock = json.loads((data / "gptcache_mock_pairs" / "mock_data.json").read_text("utf-8"))
    origins = [row["origin"] for row in mock]
    similars = [row["similar"] for row in mock]
    sims = np.asarray(embed(similars)) @ np.asarray(embed(origins)).T
    same_text = np.array(origins)[:, None] == np.array(origins)[None, :]
    sims = np.where(same_text, -np.inf, sims)
    drop = same_fact_pairs() if audited else set()
    out: dict[Split, list[Pair]] = {s: [] for s in SPLITS}
    for i, query in enumerate(similars):
        split = split_of("gptcache:" + origins[i])
        nearest = origins[int(np.argmax(sims[i]))]
        out[split].append(Pair(query, origins[i], True, "gptcache", "paraphrase"))
        if split == "train" or (query, nearest) not in drop:
            out[split].append(Pair(query, nearest, False, "gptcache", "nearest"))
    return out


def guard_pairs(path: Path = GUARD_PAIRS, source: str = "guard_pairs") -> dict[Split, list[Pair]]:
    """Hand-written pairs: ``report`` rows are test, ``design`` rows go to train and dev."""
    out: dict[Split, list[Pair]] = {s: [] for s in SPLITS}
    for line in path.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        pair = Pair(r["a"], r["b"], bool(r["same"]), source, r["kind"])
        split: Split = "test" if r["split"] == "report" else split_of(r["a"], (0.65, 1.0))
        out[split].append(pair)
    return out


_CONTRACTIONS = (
    ("What is", "What's"), ("what is", "what's"), ("It is", "It's"), ("it is", "it's"),
    ("do not", "don't"), ("does not", "doesn't"), ("is not", "isn't"), ("can not", "can't"),
    ("I am", "I'm"), ("you are", "you're"), ("there is", "there's"), ("How is", "How's"),
)  # fmt: skip


def rewrite(text: str, seed: str) -> str:
    """The same question retyped: one to three surface edits, chosen by ``seed``."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    out = text
    for k in range(1 + digest[0] % 3):
        edit = digest[1 + k] % 6
        if edit == 0:
            out = out.lower()
        elif edit == 1:
            out = out.rstrip(" .?!") + ("?" if digest[5 + k] % 2 else "")
        elif edit == 2:
            for long, short in _CONTRACTIONS:
                if long in out or short in out:
                    out = out.replace(long, short) if long in out else out.replace(short, long)
                    break
        elif edit == 3:
            for article in (" the ", " a ", " an ", " The "):
                if article in out:
                    out = out.replace(article, " ", 1)
                    break
        elif edit == 4:
            out = "Please, " + out[:1].lower() + out[1:] if out else out
        else:
            out = " ".join(out.split()).replace(" ,", ",").replace(" .", ".")
    return out


def rewrite_pairs(
    sources: dict[str, dict[Split, list[Pair]]], per_split: int = 1500
) -> dict[Split, list[Pair]]:
    """Up to ``per_split`` retyped questions per split, from that split's texts only."""
    out: dict[Split, list[Pair]] = {s: [] for s in SPLITS}
    for split in SPLITS:
        texts = sorted(
            {p.cached for name in ("gptcache", "paws") for p in sources[name][split]},
            key=lambda t: hashlib.sha256(t.encode("utf-8")).digest(),
        )
        for text in texts:
            retyped = rewrite(text, "rewrite:" + text)
            if retyped != text and len(out[split]) < per_split:
                out[split].append(Pair(retyped, text, True, "rewrites", "rewrite"))
    return out


def load_all(
    data: Path, embed: Callable[[Sequence[str]], Any], *, audited: bool = True
) -> dict[str, dict[Split, list[Pair]]]:
    """{source: {split: pairs}} for every source."""
    sources = {
        "gptcache": gptcache_pairs(data, embed, audited=audited),
        "paws": paws_pairs(data),
        "guard_pairs": guard_pairs(),
        "near_miss": guard_pairs(NEAR_MISS_PAIRS, "near_miss"),
    }
    sources["rewrites"] = rewrite_pairs(sources)
    return sources
