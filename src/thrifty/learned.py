"""Files that ``thrifty tune`` learns (a router's predictor, a cascade's verifier).

Each is one ``.npz`` of plain arrays (no pickles), written atomically enough for a
config to point at, and read once per process per file version.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

_cache: dict[tuple[str, str, float], Any] = {}
_lock = threading.Lock()


def save_arrays(path: str | Path, **arrays: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(handle, **{k: np.asarray(v) for k, v in arrays.items()})
    return path


def load_cached(path: str | Path, build: Callable[[Any], T], kind: str) -> T:
    """``build(arrays)`` once per (kind, file, modification time)."""
    path = Path(path)
    key = (kind, str(path.resolve()), path.stat().st_mtime)
    with _lock:
        cached = _cache.get(key)
        if cached is None:
            with np.load(path, allow_pickle=False) as arrays:
                cached = build(arrays)
            _cache[key] = cached
    return cached  # type: ignore[no-any-return]
