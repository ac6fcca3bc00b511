"""The verifier learns a known signal from answer texts, spreads its scores over the
threshold grid, round-trips through its file, and still loads the earlier format."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from thrifty.cascade.verifier import AnswerVerifier, EmbeddingVerifier
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord

CHEAP, STRONG = "cheap", "strong"
DATA = Path(__file__).parent / "data"
TOPICS = ["rivers", "tax law", "sorting", "enzymes", "poetry", "orbits"]


def _records(n: int, seed: int) -> list[ReplayRecord]:
    """The cheap model's bad answers refuse, hedge or stop short (a known signal)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        topic = rng.choice(TOPICS)
        good = rng.random() < 0.5
        if good:
            points = range(rng.randrange(3, 7))
            text = f"Here is how {topic} work. " + " ".join(
                f"Point {k}: {topic} detail {rng.randrange(50)}." for k in points
            )
        else:
            text = rng.choice([
                f"I'm sorry, but I can't help with {topic}.",
                f"I am not sure. It depends on {topic}, perhaps",
                f"{topic} are",
            ])  # fmt: skip
        out.append(ReplayRecord(
            id=f"{seed}-{i}", messages=({"role": "user", "content": f"Explain {topic} {i}"},),
            params={}, tags={},
            answers={CHEAP: RecordedAnswer(text, 1.0 if good else 0.2, None),
                     STRONG: RecordedAnswer(f"A full answer on {topic}.", 1.0, None)},
        ))  # fmt: skip
    return out


def _scores(verifier: object, records: list[ReplayRecord]) -> tuple[np.ndarray, np.ndarray]:
    prompts = [r.messages[0]["content"] for r in records]
    answers = [r.answers[CHEAP].text or "" for r in records]
    scores = verifier.probabilities(prompts, answers, [10] * len(records), [CHEAP] * len(records))  # type: ignore[attr-defined]
    labels = np.array([r.answers[CHEAP].quality == 1.0 for r in records])
    return scores, labels


def test_the_verifier_separates_good_answers_and_spreads_its_scores(tmp_path: Path) -> None:
    verifier = AnswerVerifier.fit(_records(300, 1), [CHEAP], STRONG)
    scores, good = _scores(verifier, _records(200, 2))
    assert scores[good].min() > scores[~good].max()  # every good answer above every bad one
    p10, p90 = np.quantile(scores, [0.1, 0.9])
    assert p10 < 0.3 and p90 > 0.7  # a 0.3–0.9 threshold grid has something to choose
    loaded = AnswerVerifier.load(verifier.save(tmp_path / "v.npz"))
    np.testing.assert_allclose(_scores(loaded, _records(50, 3))[0],
                               _scores(verifier, _records(50, 3))[0], atol=1e-3)  # fmt: skip


def test_the_earlier_embedding_verifier_file_still_loads() -> None:
    # the arena example's verifier as shipped on 2026-11-28 (the example is regenerated
    # with the current kind; this copy keeps the older file's loading tested)
    verifier = AnswerVerifier.load(DATA / "embedding_verifier_2026-11-28.npz")
    assert isinstance(verifier, EmbeddingVerifier)
    scores, _ = _scores(verifier, _records(5, 4))
    assert ((scores > 0) & (scores < 1)).all()
