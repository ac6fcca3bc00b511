"""The semantic index: partitions, persistence, bounds and TTL."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from thrifty.cache.semantic_index import SemanticIndex


def unit(seed: int, dims: int = 16) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dims).astype(np.float32)
    return vector / np.linalg.norm(vector)


def test_search_stays_in_its_partition(tmp_path: Path) -> None:
    index = SemanticIndex(tmp_path / "s.db", max_entries=100)
    index.add("p1", "t", "question one", unit(1), b"answer one", None)
    index.add("p2", "t", "question two", unit(2), b"answer two", None)
    match = index.search("p1", unit(1))
    assert match is not None and match.response == b"answer one"
    assert match.similarity > 0.999
    assert index.search("p3", unit(1)) is None
    second = index.search("p2", unit(1))
    assert second is not None and second.response == b"answer two"  # only candidate there


def test_restart_keeps_entries_and_ttl_expires(tmp_path: Path) -> None:
    index = SemanticIndex(tmp_path / "s.db", max_entries=100)
    index.add("p", "t", "kept", unit(1), b"kept", None)
    index.add("p", "t", "short", unit(2), b"short", 0.05)
    index.close()
    reopened = SemanticIndex(tmp_path / "s.db", max_entries=100)
    assert len(reopened) == 2
    time.sleep(0.1)
    match = reopened.search("p", unit(2))
    assert match is not None and match.response == b"kept", "the expired entry is gone"
    assert len(reopened) == 1


def test_bound_evicts_oldest_first() -> None:
    index = SemanticIndex(None, max_entries=50)
    for i in range(150):
        index.add(f"p{i % 3}", "t", f"q{i}", unit(i), f"a{i}".encode(), None)
    assert len(index) == 50
    assert index.search("p0", unit(0)).response != b"a0"  # type: ignore[union-attr]
    match = index.search("p2", unit(149))
    assert match is not None and match.response == b"a149"
