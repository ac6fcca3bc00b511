"""The shipped static embedder: loads offline from package data, behaves like an embedding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from thrifty.embeddings import StaticEmbedder, get_embedder
from thrifty.embeddings.static import DATA_DIR

# (paraphrase a, paraphrase b, unrelated to a)
PAIRS = [
    (
        "How do I reverse a list in Python?",
        "What's the way to reverse a Python list?",
        "Give me a recipe for banana bread.",
    ),
    (
        "What is the capital of France?",
        "Tell me the capital city of France.",
        "How do I fix a flat bicycle tyre?",
    ),
    (
        "Write a haiku about autumn leaves.",
        "Compose a short haiku on falling leaves in autumn.",
        "Explain the difference between TCP and UDP.",
    ),
    (
        "What are the symptoms of the flu?",
        "Which symptoms does influenza cause?",
        "Recommend a good science fiction novel.",
    ),
    (
        "How can I improve my time management skills?",
        "Tips for managing my time better?",
        "Convert 100 kilometers to miles.",
    ),
]


@pytest.mark.slow
def test_loads_offline_in_a_fresh_process() -> None:
    code = textwrap.dedent(
        """
        import sys
        from thrifty.embeddings import get_embedder
        v = get_embedder().embed(["hello world"])
        assert v.shape == (1, 256), v.shape
        assert "torch" not in sys.modules and "model2vec" not in sys.modules
        print("ok")
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("HF_HOME", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.slow
def test_import_reads_nothing() -> None:
    code = "import sys, thrifty.embeddings; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_shape_dtype_and_unit_norm() -> None:
    emb = get_embedder()
    vecs = emb.embed(["short", "a somewhat longer sentence about databases", "x " * 5000])
    assert vecs.shape == (3, emb.dimensions) == (3, 256)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert emb.embed_one("short").shape == (256,)


def test_empty_inputs() -> None:
    emb = get_embedder()
    assert emb.embed([]).shape == (0, 256)
    vecs = emb.embed(["", "☃☃", "fine"])  # no known token -> zero vector
    assert not vecs[0].any() and not vecs[1].any() and vecs[2].any()
    with pytest.raises(TypeError):
        emb.embed("a single string")  # type: ignore[arg-type]


def test_deterministic_and_batch_independent() -> None:
    texts = [p for pair in PAIRS for p in pair]
    batch = get_embedder().embed(texts)
    again = StaticEmbedder().embed(texts)
    singles = np.stack([get_embedder().embed_one(t) for t in texts])
    np.testing.assert_array_equal(batch, again)
    np.testing.assert_allclose(batch, singles, atol=1e-6)


def test_paraphrases_score_above_unrelated() -> None:
    emb = get_embedder()
    for a, b, other in PAIRS:
        va, vb, vo = emb.embed([a, b, other])
        assert float(va @ vb) > float(va @ vo) + 0.2, (a, float(va @ vb), float(va @ vo))


def test_long_input_is_truncated() -> None:
    emb = get_embedder()
    head = "the cat sat on the mat. " * 200  # well over max_tokens tokens
    a, b = emb.embed([head, head + "quantum chromodynamics lattice gauge " * 100])
    np.testing.assert_allclose(a, b, atol=1e-6)  # the tail past the bound does not count
    assert emb.max_tokens == 512


def test_shipped_files_are_small_and_licensed() -> None:
    total = sum(p.stat().st_size for p in DATA_DIR.iterdir())
    assert total < 20 * 1024 * 1024
    notice = (DATA_DIR / "NOTICE").read_text(encoding="utf-8")
    assert "Apache" in notice and "MIT" in notice
