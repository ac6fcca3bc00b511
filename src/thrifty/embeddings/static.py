"""Static (model2vec-style) text embedder: a token-row lookup and a mean, in numpy.

Why this embedder: it is shipped inside the package (15 MB of float16 rows distilled once
from all-MiniLM-L6-v2, see ``scripts/distill_embedder.py``), needs only ``numpy`` and
``tokenizers`` at run time, loads in ~0.1 s and embeds a short prompt in well under a
millisecond, which fits a router's and a semantic cache's per-request budget.

What it cannot do: it ignores word order ("100 km to miles" and "100 miles to km" embed
identically), so callers that need exactness (the semantic cache) must add guards.

Pooling is model2vec 0.10's ``StaticModel.encode`` (checked equal by the distil script):

1. cut the text to ``max_chars`` characters (bounds tokenizer cost on huge prompts),
2. WordPiece-tokenize without special tokens, truncate to ``max_tokens`` tokens,
3. drop the special ids (``[UNK]``, ``[PAD]``),
4. mean of the token rows (SIF weights are already folded into the rows),
5. L2-normalise. A text with no known token embeds as the zero vector.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class _Loaded:
    rows: np.ndarray  # float32 (vocab, dims)
    tokenizer: Any  # tokenizers.Tokenizer
    skip_ids: frozenset[int]
    max_tokens: int
    max_chars: int


class StaticEmbedder:
    """Embeds texts into L2-normalised float32 vectors (``dimensions`` wide).

    Files are read on first use (or :meth:`load`), once, under a lock, so constructing one
    is free and concurrent first calls are safe. ``embed`` itself holds no lock.

    Example::

        emb = get_embedder()
        vecs = emb.embed(["reverse a list in python", "how to reverse a python list"])
        similarity = float(vecs[0] @ vecs[1])
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        max_tokens: int | None = None,
        max_chars: int | None = None,
    ) -> None:
        self._dir = Path(data_dir) if data_dir is not None else DATA_DIR
        self._max_tokens = max_tokens
        self._max_chars = max_chars
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None

    @property
    def dimensions(self) -> int:
        """Width of every embedding (256 for the shipped model)."""
        return int(self.load().rows.shape[1])

    @property
    def max_tokens(self) -> int:
        """Tokens per text that count; the rest of a longer text is ignored."""
        return self.load().max_tokens

    def load(self) -> _Loaded:
        """Read rows and tokenizer if not done yet; safe to call from several threads."""
        loaded = self._loaded
        if loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._read()
                loaded = self._loaded
        return loaded

    def _read(self) -> _Loaded:
        import numpy as np
        from tokenizers import Tokenizer

        config = json.loads((self._dir / "config.json").read_text(encoding="utf-8"))
        rows = np.load(self._dir / "embeddings.npy", allow_pickle=False).astype(np.float32)
        tokenizer = Tokenizer.from_file(str(self._dir / "tokenizer.json"))
        max_tokens = int(self._max_tokens or config["max_tokens"])
        max_chars = int(self._max_chars or config["max_chars"])
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_tokens)
        special = tokenizer.get_added_tokens_decoder()
        skip = frozenset(i for i, tok in special.items() if tok.special)
        if rows.shape[0] != tokenizer.get_vocab_size():
            raise ValueError(f"{self._dir}: {rows.shape[0]} rows but tokenizer vocab differs")
        return _Loaded(rows, tokenizer, skip, max_tokens, max_chars)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns float32 of shape ``(len(texts), dimensions)``.

        Rows are unit length (zero for a text with no known token), so a dot product is
        the cosine similarity. The same text always gives the same vector.
        """
        import numpy as np

        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        m = self.load()
        out = np.zeros((len(texts), m.rows.shape[1]), dtype=np.float32)
        if not texts:
            return out
        cut = [t[: m.max_chars] for t in texts]
        encodings = m.tokenizer.encode_batch_fast(cut, add_special_tokens=False)
        ids: list[int] = []
        starts: list[int] = []
        targets: list[int] = []
        for i, enc in enumerate(encodings):
            kept = [t for t in enc.ids if t not in m.skip_ids]
            if kept:
                targets.append(i)
                starts.append(len(ids))
                ids.extend(kept)
        if not ids:
            return out
        sums = np.add.reduceat(m.rows[np.asarray(ids, dtype=np.intp)], starts, axis=0)
        counts = np.diff(np.asarray([*starts, len(ids)]))
        means = sums / counts[:, None]
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        out[targets] = means / np.maximum(norms, 1e-12)
        return out

    def token_vectors(self, text: str) -> np.ndarray:
        """The rows of ``text``'s tokens, in order: ``(tokens, dimensions)`` float32.

        The mean of these rows, normalised, is :meth:`embed`; callers that need word order
        (the semantic cache's pair check pools them by position) use the rows themselves.
        """
        import numpy as np

        m = self.load()
        enc = m.tokenizer.encode(text[: m.max_chars], add_special_tokens=False)
        ids = [t for t in enc.ids if t not in m.skip_ids]
        if not ids:
            return np.zeros((0, m.rows.shape[1]), dtype=np.float32)
        return m.rows[np.asarray(ids, dtype=np.intp)]

    def embed_one(self, text: str) -> np.ndarray:
        """Embed a single text; returns a read-only float32 vector ``(dimensions,)``.

        Recent texts are remembered (a bounded LRU): the same prompt is embedded again by
        the router, the verifier and, in tuning, by every candidate replay.
        """
        return self._cached(text)

    def embed_cached(self, texts: Sequence[str]) -> np.ndarray:
        """Like :meth:`embed`, through the same LRU as :meth:`embed_one`."""
        import numpy as np

        if not texts:
            return self.embed([])
        return np.stack([self._cached(t) for t in texts])

    @functools.cached_property
    def _cached(self) -> Callable[[str], np.ndarray]:
        @functools.lru_cache(maxsize=8192)
        def one(text: str) -> np.ndarray:
            vector = self.embed([text])[0]
            vector.flags.writeable = False
            return vector

        return one


_shared: StaticEmbedder | None = None
_shared_lock = threading.Lock()


def get_embedder() -> StaticEmbedder:
    """The process-wide embedder over the shipped data (files read on first ``embed``)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = StaticEmbedder()
    return _shared
