"""The sentence encoder the quality predictor may read: ``none``, ``static`` or ``minilm``.

* ``static``: the shipped 256-d model2vec embedder (``embeddings/static.py``), ~17k
  prompts/s: cheap at tune time and at decision time.
* ``minilm``: all-MiniLM-L6-v2 (``embeddings/minilm.py``), 384-d, a real transformer,
  truncated to ``MINILM_TOKENS`` word pieces for speed (the routing signal is mostly in
  the first sentence or two). ~35–55 prompts/s batched on a loaded 2-core machine and
  ~6 ms for one prompt at decision time, hence the disk cache below for tuning.

:func:`embed_many` batches, and keeps what it computed in an on-disk cache keyed by a
hash of the text (``cache_dir/<encoder>/*.npz``, float16 vectors): ``thrifty tune`` fits
one predictor per fold on the same prompts, and re-tuning the same traffic is then warm.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

Encoder = Literal["none", "static", "minilm"]
ENCODERS: tuple[str, ...] = ("none", "static", "minilm")
MINILM_TOKENS = 64
SHARD_ROWS = 2048  # vectors per cache file written (a crash loses at most this many)
BATCH = 64  # texts per embedder call: the static embedder gathers every token's row at once
log = logging.getLogger(__name__)


@functools.cache
def _embedder(encoder: str) -> Any:
    if encoder == "static":
        from thrifty.embeddings import get_embedder

        return get_embedder()
    if encoder == "minilm":
        from thrifty.embeddings.minilm import MiniLMEmbedder

        return MiniLMEmbedder(max_tokens=MINILM_TOKENS)
    raise ValueError(f"unknown encoder {encoder!r}; known: {list(ENCODERS)}")


def available(encoder: str) -> bool:
    """Whether ``encoder`` can run here (MiniLM needs its weights package)."""
    if encoder != "minilm":
        return encoder in ENCODERS
    from thrifty.embeddings.minilm import minilm_available

    return minilm_available()


def text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


class DiskCache:
    """Vectors by text hash, in append-only ``.npz`` shards under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._vectors: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        for shard in sorted(directory.glob("*.npz")) if directory.is_dir() else []:
            try:
                with np.load(shard, allow_pickle=False) as data:
                    self._vectors.update(zip(data["keys"].tolist(), data["vectors"], strict=True))
            except (OSError, ValueError, KeyError):
                log.warning("embedding cache file unreadable, ignored: %s", shard)

    def get(self, key: int) -> np.ndarray | None:
        return self._vectors.get(key)

    def add(self, keys: Sequence[int], vectors: np.ndarray) -> None:
        if not len(keys):
            return
        with self._lock:
            self._vectors.update(zip(keys, vectors.astype(np.float16), strict=True))
            self.directory.mkdir(parents=True, exist_ok=True)
            name = hashlib.blake2b(np.asarray(keys, dtype=np.int64).tobytes(), digest_size=8)
            temporary = self.directory / f".{name.hexdigest()}.tmp"
            with temporary.open("wb") as handle:
                np.savez(handle, keys=np.asarray(keys, dtype=np.int64),
                         vectors=vectors.astype(np.float16))  # fmt: skip
            temporary.replace(self.directory / f"{name.hexdigest()}.npz")


_LOADED: dict[str, DiskCache] = {}  # by directory, oldest first
LOADED_MAX = 4


def _disk(directory: str) -> DiskCache:
    cache = _LOADED.get(directory)
    if cache is None:
        cache = _LOADED[directory] = DiskCache(Path(directory))
        while len(_LOADED) > LOADED_MAX:
            _LOADED.pop(next(iter(_LOADED)))
    return cache


def embed_many(texts: Sequence[str], encoder: str, cache_dir: Path | None = None) -> np.ndarray:
    """float32 ``(len(texts), dims)`` embeddings, through the disk cache when given."""
    if cache_dir is None:
        return _batched(list(texts), encoder)
    cache = _disk(str((cache_dir / encoder).resolve()))
    keys = [text_hash(t) for t in texts]
    missing = list(dict.fromkeys(k for k in keys if cache.get(k) is None))
    if missing:
        by_key = dict(zip(keys, texts, strict=True))
        log.info("embedding %d of %d prompts with %s", len(missing), len(texts), encoder)
        for start in range(0, len(missing), SHARD_ROWS):
            chunk = missing[start : start + SHARD_ROWS]
            cache.add(chunk, _batched([by_key[k] for k in chunk], encoder))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([cache.get(k) for k in keys]).astype(np.float32)  # type: ignore[misc]


def _batched(texts: list[str], encoder: str) -> np.ndarray:
    embedder = _embedder(encoder)
    parts = [np.asarray(embedder.embed(texts[i : i + BATCH])) for i in range(0, len(texts), BATCH)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), np.float32)


def embed_one(text: str, encoder: str) -> np.ndarray:
    """One prompt at decision time (MiniLM: ~6 ms on this machine; static: ~0.1 ms).
    In a process that tuned, a vector already in a loaded disk cache is reused (the
    tuner replays the held-out folds' prompts one by one)."""
    if _LOADED:
        key = text_hash(text)
        for directory, cache in list(_LOADED.items()):
            vector = cache.get(key) if Path(directory).name == encoder else None
            if vector is not None:
                return vector.astype(np.float32)
    return np.asarray(_embedder(encoder).embed_one(text), dtype=np.float32)
