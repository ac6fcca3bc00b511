"""MiniLM cross features of a question pair: alignment, memo, and the bulk cache on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from thrifty.cache import pair_cross
from thrifty.cache.pair_cross import CROSS_FEATURES, cross_features, encode_bulk
from thrifty.embeddings.minilm import INSTALL_HINT, minilm_available

if not minilm_available():
    message = f"the MiniLM weights are not installed ({INSTALL_HINT})"
    if os.environ.get("THRIFTY_CI"):
        pytest.fail(message + "; THRIFTY_CI is set, so this is an error", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def named(a: str, b: str) -> dict[str, float]:
    return dict(zip(CROSS_FEATURES, cross_features(a, b), strict=True))


def test_a_question_aligns_with_itself_and_not_with_a_swapped_animal() -> None:
    same = named("Can dogs eat grapes?", "Can dogs eat grapes?")
    assert same["minilm_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert same["align_min"] == pytest.approx(1.0, abs=1e-3)
    assert same["unaligned_share"] == 0.0 and same["align_order"] == 1.0
    swapped = named("Can dogs eat grapes?", "Can cats eat grapes?")
    assert swapped["align_min_content"] < 0.8 < same["align_min_content"]
    assert np.isfinite(cross_features("?", "")).all()


def test_bulk_readings_are_kept_on_disk_and_read_back(tmp_path: Path) -> None:
    texts = ["What is the capital of France?", "what's france's capital"]
    direct = cross_features(*texts)
    assert encode_bulk(texts, tmp_path) == 2
    assert list(tmp_path.glob("*.npz"))
    pair_cross._preloaded.clear()
    pair_cross._memo.clear()
    assert encode_bulk(texts, tmp_path) == 0, "the second run reads the shards"
    assert set(texts) <= pair_cross._preloaded.keys()
    np.testing.assert_allclose(cross_features(*texts), direct, atol=1e-6)
    pair_cross._preloaded.clear()
