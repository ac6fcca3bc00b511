"""The router's encoders: the disk cache gives back what was embedded, in any order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thrifty.routing.encoders import DiskCache, embed_many


def test_embeddings_come_back_from_the_disk_cache(tmp_path: Path) -> None:
    texts = ["what is the capital of France", "prove the theorem", "what is the capital of France"]
    first = embed_many(texts, "static", tmp_path)
    assert first.shape == (3, 256) and np.allclose(first[0], first[2])
    assert list((tmp_path / "static").glob("*.npz")), "the vectors were written to disk"
    fresh = DiskCache(tmp_path / "static")  # a new process reads the shards back
    again = embed_many(list(reversed(texts)), "static", tmp_path)
    np.testing.assert_allclose(again[::-1], first, atol=2e-3)  # stored as float16
    assert all(fresh.get(k) is not None for k in fresh._vectors)
