"""Cross features of a pair from MiniLM: the two questions read together, token by token.

The pair check's lexical features (``pair_features.py``) see which words differ; they do
not see what a differing word *means in its sentence*. all-MiniLM-L6-v2
(``thrifty.embeddings.minilm``) gives each word piece a contextual vector; aligning the
pieces of one question to the other (BERTScore-style greedy matching) says whether every
part of one has a counterpart in the other, and whether shared words kept their role
("dogs" in "can dogs eat grapes" vs in "can grapes hurt dogs"). No cross-encoder with
weights inside a registry package was found (see ``docs/semantic-cache.md``), so this is
the stronger encoder, used as the issue allows: its features feed the same small tree
model, trained on ``shared/data`` pairs.

Cost: one MiniLM pass per text not seen before (~6–20 ms on this machine), remembered in
a bounded LRU (a stored question recurs); the alignment itself is a small matrix product.
Only candidates that pass the similarity threshold and the guards get here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from thrifty.cache.guards import _STOP

if TYPE_CHECKING:
    from thrifty.embeddings.minilm import TokenVectors

log = logging.getLogger(__name__)
CROSS_FEATURES: tuple[str, ...] = (
    "minilm_cosine",
    "align_mean",
    "align_min",
    "align_min_content",
    "unaligned_share",
    "align_order",
    "same_piece_min",
    "piece_ratio",
)
_UNALIGNED = 0.7  # a piece whose best counterpart is below this has none
_MEMO_SIZE = 2048  # ~25 KB per question (float16 rows): ~50 MB at most
_memo: dict[str, TokenVectors] = {}
_preloaded: dict[str, TokenVectors] = {}  # bulk-encoded by a script: not evicted
_lock = threading.Lock()


def _rounded(tv: TokenVectors) -> TokenVectors:
    """Token rows kept as float16: half the memory, and the precision the training
    script's cache had, so features match the model's training exactly."""
    from thrifty.embeddings.minilm import TokenVectors

    return TokenVectors(tv.vector, tv.tokens.astype(np.float16), tv.pieces)


def preload(items: Iterable[tuple[str, TokenVectors]]) -> None:
    """Keep texts encoded in bulk (the training script and the bench): never evicted."""
    with _lock:
        _preloaded.update((text, _rounded(tv)) for text, tv in items)


def encoded(text: str) -> TokenVectors:
    """MiniLM's reading of ``text``, through a bounded memo (a stored question recurs)."""
    tv = _preloaded.get(text) or _memo.get(text)
    if tv is None:
        from thrifty.embeddings.minilm import get_minilm

        tv = _rounded(get_minilm().encode_tokens([text])[0])
        with _lock:
            _memo[text] = tv
            while len(_memo) > _MEMO_SIZE:
                _memo.pop(next(iter(_memo)))
    return tv


def _content(pieces: tuple[str, ...]) -> np.ndarray:
    return np.array(
        [p.startswith("##") or (p.isalnum() and p not in _STOP) for p in pieces], dtype=bool
    )


def _concordance(seq: np.ndarray) -> float:
    if seq.size < 2:
        return 1.0
    d = np.sign(seq[None, :] - seq[:, None])
    upper = np.triu_indices(seq.size, 1)
    pairs = d[upper]
    return float((pairs > 0).sum() / max(int((pairs != 0).sum()), 1))


def cross_features(query: str, cached: str) -> np.ndarray:
    """The ``CROSS_FEATURES`` of one pair, float64."""
    a, b = encoded(query), encoded(cached)
    if not len(a.pieces) or not len(b.pieces):
        return np.array([float(a.vector @ b.vector), 0, 0, 0, 1, 0, 0, 0], dtype=np.float64)
    sim = a.tokens.astype(np.float32) @ b.tokens.astype(np.float32).T
    best_a, best_b = sim.max(axis=1), sim.max(axis=0)
    content_a, content_b = _content(a.pieces), _content(b.pieces)
    content_best = np.concatenate([best_a[content_a], best_b[content_b]])
    partner = sim.argmax(axis=1)
    same_piece = [float(sim[i, j]) for i, j in enumerate(partner) if a.pieces[i] == b.pieces[j]] + [
        float(sim[i, j]) for j, i in enumerate(sim.argmax(axis=0)) if a.pieces[i] == b.pieces[j]
    ]
    return np.array(
        [
            float(a.vector @ b.vector),
            float((best_a.mean() + best_b.mean()) / 2),
            float(min(best_a.min(), best_b.min())),
            float(content_best.min()) if content_best.size else 1.0,
            float((best_a < _UNALIGNED).sum() + (best_b < _UNALIGNED).sum())
            / (best_a.size + best_b.size),
            _concordance(partner[content_a].astype(np.float64)),
            min(same_piece) if same_piece else 0.0,
            min(len(a.pieces), len(b.pieces)) / max(len(a.pieces), len(b.pieces)),
        ],
        dtype=np.float64,
    )


def encode_bulk(texts: Iterable[str], cache: Path) -> int:
    """MiniLM-read every text once and :func:`preload` it, keeping the readings in
    ``cache`` (a folder of ``.npz`` shards, plain arrays) so the next run of the training
    script or the bench reads them instead of spending ~20 ms per text. Returns how many
    texts were encoded now."""
    from thrifty.embeddings.minilm import get_minilm

    cache.mkdir(parents=True, exist_ok=True)
    known: dict[str, TokenVectors] = {}
    for shard in sorted(cache.glob("*.npz")):
        known.update(_read_shard(shard))
    todo = sorted(set(texts) - known.keys())
    encoder, chunk = get_minilm(), {}
    for i, text in enumerate(todo, 1):
        chunk[text] = encoder.encode_tokens([text])[0]
        if len(chunk) == 1000 or i == len(todo):
            write_shard(cache / f"{time.time_ns()}.npz", chunk)
            known.update(chunk)
            chunk = {}
            log.info("MiniLM encoded %d of %d texts", i, len(todo))
    preload(known.items())
    return len(todo)


def write_shard(path: Path, readings: dict[str, TokenVectors]) -> None:
    texts = list(readings)
    rows = [readings[t] for t in texts]
    np.savez(
        path,
        texts=np.array(texts, dtype=object).astype(str),
        vectors=np.stack([r.vector for r in rows]),
        tokens=np.concatenate([r.tokens for r in rows]).astype(np.float16),
        lengths=np.array([len(r.pieces) for r in rows]),
        pieces=np.array([" ".join(r.pieces) for r in rows], dtype=object).astype(str),
    )


def _read_shard(path: Path) -> dict[str, TokenVectors]:
    from thrifty.embeddings.minilm import TokenVectors

    with np.load(path, allow_pickle=False) as z:  # each z[...] reads the file: once each
        texts, vectors, lengths, pieces = z["texts"], z["vectors"], z["lengths"], z["pieces"]
        tokens = z["tokens"]
    ends = np.cumsum(lengths)
    return {
        str(text): TokenVectors(
            vectors[i].copy(), tokens[end - n : end].copy(), tuple(str(p).split(" ")) if n else ()
        )
        for i, (text, n, end, p) in enumerate(zip(texts, lengths, ends, pieces, strict=True))
    }
