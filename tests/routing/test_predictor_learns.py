"""The learned predictor finds a known signal, beats random routing at equal cost, and
round-trips through its file."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord
from thrifty.routing.predictor import QualityPredictor

CHEAP, STRONG = "cheap", "strong"
EASY = ["capital", "color", "add", "spell", "name"]
HARD = ["prove", "derive", "optimize", "theorem", "integral"]


def _records(n: int, seed: int) -> list[ReplayRecord]:
    """The cheap model fails mostly on prompts with a 'hard' word (a known signal)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        hard = rng.random() < 0.4
        words = [rng.choice(HARD if hard else EASY)] + [f"w{rng.randrange(300)}" for _ in range(8)]
        cheap_ok = rng.random() < (0.3 if hard else 0.95)
        out.append(
            ReplayRecord(
                id=f"r{seed}-{i}",
                messages=({"role": "user", "content": " ".join(words)},),
                params={},
                tags={},
                answers={
                    CHEAP: RecordedAnswer(None, float(cheap_ok), 5),
                    STRONG: RecordedAnswer(None, 1.0, 5),
                },
            )
        )
    return out


def test_predictor_beats_random_at_equal_cost(tmp_path: Path) -> None:
    train, test = _records(600, 1), _records(400, 2)
    path = QualityPredictor.fit(train, [CHEAP, STRONG], STRONG).save(tmp_path / "p.npz")
    predictor = QualityPredictor.load(path)
    scores = np.array([predictor.predict(r.messages[0]["content"])[CHEAP].quality for r in test])
    cheap_ok = np.array([r.answers[CHEAP].quality for r in test])
    routed = scores >= np.quantile(scores, 0.5)  # half the requests to the cheap model
    learned_quality = np.where(routed, cheap_ok, 1.0).mean()
    random_quality = 0.5 + 0.5 * cheap_ok.mean()  # the same share, chosen at random
    assert learned_quality > random_quality + 0.1
    assert predictor.predict("anything")[STRONG].quality == 1.0


def test_training_prompts_get_out_of_fold_predictions() -> None:
    from thrifty.routing.predictor import text_key

    train = _records(300, 3)
    predictor = QualityPredictor.fit(train, [CHEAP, STRONG], STRONG)
    text = train[0].messages[0]["content"]
    stored = predictor.train_scores[np.searchsorted(predictor.train_keys, text_key(text))]
    # a training prompt is scored by the model trained without its group (its own
    # grade cannot leak into the tuner's curve); a new prompt by the mean model
    assert np.allclose(predictor.logits(text), stored)


def test_predictor_with_the_embedding_round_trips(tmp_path: Path) -> None:
    train = _records(200, 4)
    fitted = QualityPredictor.fit(train, [CHEAP, STRONG], STRONG, encoder="static")
    loaded = QualityPredictor.load(fitted.save(tmp_path / "e.npz"))
    assert loaded.dense_dim > 0
    text = "prove the theorem about the integral"
    np.testing.assert_allclose(loaded.logits(text), fitted.logits(text), rtol=1e-2, atol=1e-2)


def test_the_fit_chooses_its_penalty_by_cross_fitted_log_loss() -> None:
    """Labels that are noise call for the strong penalty (the mean alone); a clear signal
    for the weak one. The choice is made on the training rows' out-of-fold predictions."""
    signal = _records(400, 5)
    rng = random.Random(6)
    noise = [
        ReplayRecord(r.id, r.messages, r.params, r.tags, {
            CHEAP: RecordedAnswer(None, float(rng.random() < 0.7), 5),
            STRONG: RecordedAnswer(None, 1.0, 5)})
        for r in signal
    ]  # fmt: skip
    grid = (0.01, 300.0)
    assert QualityPredictor.fit(signal, [CHEAP, STRONG], STRONG, l2_rows=grid).l2_rows == 0.01
    assert QualityPredictor.fit(noise, [CHEAP, STRONG], STRONG, l2_rows=grid).l2_rows == 300.0
