"""The numpy MiniLM encoder reproduces sentence-transformers' all-MiniLM-L6-v2.

The reference similarities are the ones sentence-transformers' own quickstart prints for
``all-MiniLM-L6-v2`` (torch, exact GELU, mean pooling, normalised): matching them to 1e-3
checks tokenizer, every layer, pooling and normalisation at once.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from thrifty.embeddings.minilm import (
    INSTALL_HINT,
    MiniLMEmbedder,
    minilm_available,
    read_safetensors,
)

if not minilm_available():
    message = f"the MiniLM weights are not installed ({INSTALL_HINT})"
    if os.environ.get("THRIFTY_CI"):
        pytest.fail(message + "; THRIFTY_CI is set, so this is an error", pytrace=False)
    pytest.skip(message, allow_module_level=True)

REFERENCE = [
    ("The new movie is awesome", "The new movie is so great", 0.8939),
    ("The cat sits outside", "The dog plays in the garden", 0.2838),
    ("I love pasta", "Do you like pizza?", 0.5096),
    ("A man is playing guitar", "A woman watches TV", -0.0327),
]


@pytest.fixture(scope="module")
def encoder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.mark.parametrize(("first", "second", "expected"), REFERENCE)
def test_similarities_match_sentence_transformers(encoder, first, second, expected):
    vectors = encoder.embed([first, second])
    assert float(vectors[0] @ vectors[1]) == pytest.approx(expected, abs=1e-3)


def test_a_batch_gives_what_single_texts_give(encoder):
    texts = [
        "short",
        "a much longer sentence with many more word pieces in it than the other",
        "mid size text",
    ]
    batch = encoder.embed(texts)
    singles = np.stack([encoder.embed([t])[0] for t in texts])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert batch.shape == (3, encoder.dimensions) == (3, 384)


def test_truncation_keeps_only_the_first_pieces():
    short = MiniLMEmbedder(max_tokens=8)
    head = "alpha beta gamma delta epsilon zeta"
    same_start = short.embed([head + " and then something else entirely", head + " unrelated tail"])
    assert float(same_start[0] @ same_start[1]) == pytest.approx(1.0, abs=1e-5)


def test_cached_embeddings_equal_fresh_ones_and_are_read_only(encoder):
    texts = ["how do I reverse a list", "how do I reverse a list", "what is the capital of France"]
    cached = encoder.embed_cached(texts)
    np.testing.assert_allclose(cached, encoder.embed(texts), atol=1e-6)
    with pytest.raises(ValueError):
        encoder.embed_one(texts[0])[0] = 1.0


def test_a_single_string_is_refused(encoder):
    with pytest.raises(TypeError):
        encoder.embed("not a list")


def test_safetensors_reader_reads_every_tensor(tmp_path):
    import json
    import struct

    a = np.arange(6, dtype="<f4").reshape(2, 3)
    b = np.array([7, 8], dtype="<i8")
    header = {
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
        "__metadata__": {"format": "pt"},
    }
    raw = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + a.tobytes() + b.tobytes())
    tensors = read_safetensors(path)
    np.testing.assert_array_equal(tensors["a"], a)
    np.testing.assert_array_equal(tensors["b"], b)


def test_token_readings_pool_to_the_sentence_embedding(encoder):
    texts = ["Can dogs eat grapes?", "A longer question about the capital city of France"]
    readings = encoder.encode_tokens(texts)
    for reading, vector in zip(readings, encoder.embed(texts), strict=True):
        np.testing.assert_allclose(reading.vector, vector, atol=1e-5)
        assert reading.tokens.shape == (len(reading.pieces), 384)
        np.testing.assert_allclose(np.linalg.norm(reading.tokens, axis=1), 1.0, atol=1e-5)
    assert readings[0].pieces == ("can", "dogs", "eat", "grapes", "?")
    with pytest.raises(TypeError):
        encoder.encode_tokens("one string")
