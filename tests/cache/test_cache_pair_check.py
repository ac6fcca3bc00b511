"""The semantic cache's learned pair check: model, operating point, index prefilter, gateway."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
from tests.cache.test_cache_gateway import ask, cache_config, sdk, upstream_calls
from tests.conftest import Gateway, ServerThread

from thrifty.cache.calibrate import hits_at, pick_operating_point
from thrifty.cache.config import PairCheckConfig, SemanticCacheConfig
from thrifty.cache.guards import guard_verdict
from thrifty.cache.pair_check import load_pair_check
from thrifty.cache.pair_cross import CROSS_FEATURES
from thrifty.cache.pair_data import Pair, cross_folds, rewrite, split_of
from thrifty.cache.pair_features import FEATURES, pair_features
from thrifty.cache.pair_model import TreeModel, fit_trees
from thrifty.cache.semantic_index import SemanticIndex
from thrifty.cache.tune import tune_threshold
from thrifty.embeddings import get_embedder
from thrifty.embeddings.minilm import INSTALL_HINT, minilm_available
from thrifty.learned import save_arrays

# Same words, arguments swapped *and* no pivot the order guard needs: the guards pass these.
SWAPPED = [
    ("Who wrote the novel that the film was based on?",
     "Who wrote the film that the novel was based on?"),
]  # fmt: skip
RETYPED = [
    ("What is the capital city of France?", "what is the capital city of france"),
    ("How do I reverse a list in Python?", "how do I reverse a list in python"),
]
PARAPHRASES = [
    ("Explain how photosynthesis works.", "Can you explain how photosynthesis works?"),
    ("Is it safe to eat raw eggs?", "Are raw eggs safe to eat?"),
]


def similarity(a: str, b: str) -> float:
    embed = get_embedder().embed_one
    return float(embed(a) @ embed(b))


@pytest.mark.parametrize("encoder", ["auto", "static"])
def test_shipped_model_tells_a_swap_from_a_retyped_question(encoder: str) -> None:
    if encoder == "auto" and not minilm_available() and not os.environ.get("THRIFTY_CI"):
        pytest.skip(f"the MiniLM weights are not installed ({INSTALL_HINT})")
    check = load_pair_check(encoder=encoder)  # type: ignore[arg-type]
    # auto: MiniLM's model (installed by make, and required when THRIFTY_CI is set)
    expected = FEATURES + CROSS_FEATURES if encoder == "auto" else FEATURES
    assert check.model.features == expected and check.cross == (encoder == "auto")
    assert 0.5 <= check.similarity_threshold <= 1.0 and 0.0 < check.pair_threshold < 1.0
    assert check.meta["chosen_on"] == "train+dev" and check.meta["repeats"] == 3
    for a, b in SWAPPED:
        assert guard_verdict(a, b).ok, "the guards alone would serve this pair"
        assert similarity(a, b) >= check.similarity_threshold
        assert check.probability(a, b, similarity(a, b)) < check.pair_threshold
    for a, b in RETYPED + PARAPHRASES:
        assert similarity(a, b) >= check.similarity_threshold
        assert check.probability(a, b, similarity(a, b)) >= check.pair_threshold


def test_features_are_finite_and_order_aware() -> None:
    a, b = SWAPPED[0]
    same = pair_features(a, a, 1.0)
    swapped = pair_features(a, b, 1.0)
    assert same.shape == swapped.shape == (len(FEATURES),)
    assert np.isfinite(swapped).all() and np.isfinite(pair_features("", "?", 0.0)).all()
    named = dict(zip(FEATURES, swapped, strict=True))
    assert named["jaccard_words"] == 1.0, "a bag of words cannot see the swap"
    assert named["neighbours_kept"] < 1.0 and named["lcs_words"] < 1.0
    assert dict(zip(FEATURES, same, strict=True))["neighbours_kept"] == 1.0


def test_trees_learn_and_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((2000, 3))
    y = ((x[:, 0] > 0.6) & (x[:, 2] < 0.5)).astype(np.float64)  # an interaction
    model = fit_trees(x, y, np.ones(len(y)), ("a", "b", "c"), trees=60, depth=2)
    accuracy = ((model.predict(x) >= 0.5) == y.astype(bool)).mean()
    assert accuracy > 0.97
    path = save_arrays(tmp_path / "m.npz", **model.arrays())
    with np.load(path, allow_pickle=False) as arrays:
        again = TreeModel.from_arrays(arrays)
    assert again.features == ("a", "b", "c")
    np.testing.assert_allclose(again.predict(x[:50]), model.predict(x[:50]))


def test_a_stale_model_file_is_refused(tmp_path: Path) -> None:
    model = fit_trees(np.eye(4), np.array([0.0, 1, 0, 1]), np.ones(4), ("x",) * 4, trees=2)
    path = save_arrays(
        tmp_path / "stale.npz", **model.arrays(), similarity_threshold=0.9,
        pair_threshold=0.5, meta="{}",
    )  # fmt: skip
    with pytest.raises(ValueError, match="retrain"):
        load_pair_check(path)


def test_operating_point_counts_every_false_hit() -> None:
    sims = [0.99, 0.98, 0.97, 0.96, 0.90]
    scores = [0.9, 0.2, 0.8, 0.95, 0.99]
    same = [True, False, True, True, False]
    ok = [True] * 5
    point = pick_operating_point(sims, scores, same, ok, 0.0, similarity_grid=[0.9, 0.95])
    assert (point.similarity_threshold, point.pair_threshold) == (0.95, 0.8)
    assert point.recall == 1.0 and point.false_hit_rate == 0.0 and point.hits == 3
    assert hits_at(0.95, 0.8, sims, scores, ok) == [True, False, True, True, False]
    never = pick_operating_point([1.0], [1.0], [False], [True], 0.01)
    assert math.isinf(never.similarity_threshold) and never.hits == 0
    only_target = pick_operating_point(
        sims, scores, same, ok, 0.0, recall_on=[False, False, False, True, False]
    )
    assert only_target.recall == 1.0


def test_splits_are_stable_and_rewrites_keep_the_question() -> None:
    assert split_of("gptcache:some origin") == split_of("gptcache:some origin")
    shares = [split_of(f"k{i}") for i in range(3000)]
    assert 0.55 < shares.count("train") / 3000 < 0.65
    text = "What is the capital of France?"
    retyped = {rewrite(text, str(i)) for i in range(30)}
    assert len(retyped) > 3
    assert all(guard_verdict(text, r).ok for r in retyped)


def test_prefilter_finds_what_the_exact_scan_finds() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(1500, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    coded = SemanticIndex(None, 10_000, prefilter_from=300)
    exact = SemanticIndex(None, 10_000, prefilter_from=10**9)
    for i, v in enumerate(vectors):
        for index in (coded, exact):
            index.add("p", "t", f"q{i}", v, f"a{i}".encode(), None)
    for i in range(0, 1500, 7):
        coded._remove(i + 1)  # removals swap entries (and their codes) around
        exact._remove(i + 1)
    kept = [i for i in range(1, 1500, 5) if i % 7]  # near neighbours: what a hit needs
    queries = vectors[kept] + rng.normal(0, 0.05, (len(kept), 64)).astype(np.float32)
    for q in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        a, b = coded.search("p", q), exact.search("p", q)
        assert a is not None and b is not None
        assert (a.entry_id, a.response) == (b.entry_id, b.response)
        assert a.similarity == pytest.approx(b.similarity, abs=1e-6)


def test_config_names_the_bad_key() -> None:
    with pytest.raises(pydantic.ValidationError, match="treshold"):
        SemanticCacheConfig.model_validate({"pair_check": {"treshold": 0.5}})
    with pytest.raises(pydantic.ValidationError, match="threshold"):
        PairCheckConfig(threshold=1.5)
    assert SemanticCacheConfig().pair_check.enabled, "the pair check is on by default"
    with pytest.raises(pydantic.ValidationError, match="encoder"):
        PairCheckConfig.model_validate({"encoder": "bert"})


def test_tune_picks_both_thresholds_on_held_out_pairs() -> None:
    pairs = []
    for i in range(30):
        pairs.append((f"What is the capital of country number {i}?",
                      f"what's the capital of country number {i}", True))  # fmt: skip
        pairs.append((f"Who wrote the novel that film {i} was based on?",
                      f"Who wrote the film that novel {i} was based on?", False))  # fmt: skip
    choice = tune_threshold(pairs, 0.0, ("numbers", "negation"))
    assert choice["threshold"] is not None and choice["pair_check_threshold"] is not None
    assert choice["held_out"]["pairs"] == 30
    assert choice["held_out"]["false_hits"] == 0 and choice["held_out"]["recall"] > 0.5
    guards_only = tune_threshold(pairs, 0.0, ("numbers", "negation"), pair_check=False)
    assert guards_only["threshold"] is None, "similarity alone cannot separate these"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_gateway_serves_paraphrases_and_blocks_swaps_and_guard_pairs(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    # default semantic settings: the shipped operating point, pair check on
    gateway = start_gateway(cache_config(upstream.url, tmp_path, semantic={"enabled": True}))
    served = RETYPED + PARAPHRASES
    stored = [a for a, _ in served] + [SWAPPED[0][0], "Convert 100 km to miles."]
    with sdk(gateway) as client:
        for text in stored:
            ask(client, user(text))
        before = upstream_calls(upstream)
        hits = [ask(client, user(b)) for _, b in served]
        assert upstream_calls(upstream) == before, "the hits never reached the upstream"
        swapped = ask(client, user(SWAPPED[0][1]))
        units = ask(client, user("Convert 100 miles to km."))
        sampled = ask(client, user(RETYPED[0][1]), temperature=1.0)
        tools = ask(client, user(RETYPED[0][1]), tools=[{"type": "function", "function": {
            "name": "f", "parameters": {"type": "object", "properties": {}}}}])  # fmt: skip
    for hit in hits:
        assert hit.headers["x-thrifty-cache"].split(";")[0] == "hit-semantic"
        assert float(hit.headers["x-thrifty-cache-pair-check"]) >= load_pair_check().pair_threshold
        row = gateway.row(hit.headers["x-thrifty-request-id"])
        assert row["cost"] == 0 and "pair_check" in row["techniques"]["cache"]
    note = gateway.row(swapped.headers["x-thrifty-request-id"])["techniques"]["cache"]["semantic"]
    assert swapped.headers["x-thrifty-cache"].split(";")[0] == "miss"
    assert note["blocked_by"].startswith("pair_check"), note
    note = gateway.row(units.headers["x-thrifty-request-id"])["techniques"]["cache"]["semantic"]
    assert units.headers["x-thrifty-cache"].split(";")[0] == "miss" and note[
        "blocked_by"
    ].startswith("units")
    # a sampled request is looked up (as by the exact cache), but only among neighbours
    # asked with the same temperature: the ones above were asked at 0
    assert sampled.headers["x-thrifty-cache"].split(";")[0] == "miss"
    note = gateway.row(sampled.headers["x-thrifty-request-id"])["techniques"]["cache"]["semantic"]
    assert "similarity" not in note, note
    assert tools.headers.get("x-thrifty-cache", "").split(";")[0] != "hit-semantic"
    row = gateway.row(tools.headers["x-thrifty-request-id"])
    assert row["techniques"]["cache"]["semantic"] == "skipped: tools"


def test_gateway_pair_check_can_be_turned_off(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    semantic = {"enabled": True, "threshold": 0.95, "pair_check": {"enabled": False}}
    gateway = start_gateway(cache_config(upstream.url, tmp_path, semantic=semantic))
    with sdk(gateway) as client:
        ask(client, user(SWAPPED[0][0]))
        swapped = ask(client, user(SWAPPED[0][1]))
    assert swapped.headers["x-thrifty-cache"].split(";")[0] == "hit-semantic", (
        "guards alone serve the swap"
    )
    assert "x-thrifty-cache-pair-check" not in swapped.headers


def test_a_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match=r"pair_check\.model"):
        SemanticCacheConfig.model_validate({"pair_check": {"model": str(tmp_path / "no.npz")}})


def test_cross_folds_keep_connected_texts_together_and_redeal_per_repeat() -> None:
    def pair(a: str, b: str) -> Pair:
        return Pair(a, b, True, "gptcache", "paraphrase")

    # a-b-c are connected through b; every other pair stands alone
    pairs = [pair("a", "b"), pair("c", "b"), *(pair(f"q{i}", f"r{i}") for i in range(200))]
    for repeat in (0, 1, 2):
        folds = cross_folds(pairs, 5, repeat)
        assert folds[0] == folds[1] and set(folds) == {0, 1, 2, 3, 4}
    assert cross_folds(pairs, 5, 0) != cross_folds(pairs, 5, 1)
