"""Tuning learned routing and a verifier-checked cascade on a slice of the shipped arena set."""

from __future__ import annotations

from pathlib import Path

import yaml

from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.replay.search import deep_merge
from thrifty.replay.tuner import tune
from thrifty.routing.predictor import QualityPredictor

EXAMPLES = Path(__file__).parents[2] / "examples"
CHEAP, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def test_learned_parts_are_fitted_on_training_rows_only(tmp_path: Path) -> None:
    records = load_dataset(bundled_dataset())[:60]
    raw = yaml.safe_load((EXAMPLES / "arena.yaml").read_text())
    raw = deep_merge(raw, {
        "routing": {"enabled": True, "strategy": "threshold", "candidates": [CHEAP, STRONG]},
        "cascade": {"enabled": True, "tiers": [
            {"model": CHEAP, "checks": ["heuristics", "verifier"]}, {"model": STRONG}]},
    })  # fmt: skip
    result = tune(records, raw, 0.9, folds=3, base_dir=EXAMPLES, workdir=tmp_path)
    held = result.held_out
    assert held["folds"] == 3 and held["rows"] > 0
    assert (
        held["quality_retained_ci"][0] <= held["quality_retained"] <= held["quality_retained_ci"][1]
    )
    # each fold's predictor saw only that fold's training rows (≈ 2/3 of the answered rows)
    answered = sum(1 for r in records if STRONG in r.answers)
    for fold in range(3):
        predictor = QualityPredictor.load(tmp_path / f"fold{fold}" / "routing" / "predictor.npz")
        assert len(predictor.train_keys) < answered
    final = QualityPredictor.load(tmp_path / "final" / "routing" / "predictor.npz")
    assert len(final.train_keys) == answered
    assert (tmp_path / "final" / "cascade" / "verifier.npz").exists()
    chosen = result.chosen.candidate.patch
    assert "threshold" in chosen["routing"] and "verifier" in chosen["cascade"]


def test_predictor_prefers_the_model_that_did_well_on_similar_prompts() -> None:
    records = load_dataset(bundled_dataset())[:120]
    predictor = QualityPredictor.fit(records, [CHEAP, STRONG], STRONG)
    text = "How do I reverse a linked list in place?"
    prediction = predictor.predict(text)
    assert set(prediction) == {CHEAP, STRONG}
    assert all(0.0 <= p.quality <= 1.0 and p.output_tokens > 0 for p in prediction.values())
