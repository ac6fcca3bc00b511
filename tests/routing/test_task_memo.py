"""The process-wide memo of task classifications changes no prediction.

Every prompt of the shipped arena set is classified through the memo (twice: a miss,
then a hit) and without it; classifiers with other rules or weights never get each
other's entries; the memo stays within its bound."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from thrifty.embeddings import get_embedder
from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.routing.tasks import (
    PREDICTIONS,
    LearnedTaskClassifier,
    PredictionMemo,
    RuleTaskClassifier,
    TaskPrediction,
    with_labels,
)
from thrifty.routing.text import prompt_text


@pytest.fixture(scope="module")
def texts() -> list[str]:
    found = [prompt_text(r.messages) for r in load_dataset(bundled_dataset())]
    return [*found, "x" * 50_000 + " translate this into French"]  # a head-and-tail scan


def test_rules_memo_gives_the_plain_predictions(texts: list[str]) -> None:
    rules = RuleTaskClassifier()
    PREDICTIONS.clear()
    for _ in range(2):  # misses, then hits
        assert [rules.classify(t) for t in texts] == [rules.classify_uncached(t) for t in texts]


def test_learned_memo_gives_the_plain_predictions(texts: list[str]) -> None:
    learned = LearnedTaskClassifier()
    embedder = get_embedder()
    vectors = np.stack([embedder.embed_one(t) for t in texts])
    plain = learned.classify_uncached(texts, vectors)
    PREDICTIONS.clear()
    assert learned.classify_many(texts, vectors) == plain
    assert learned.classify_many(texts) == plain  # hits; the embeddings computed here
    assert [learned.classify(t, embedding=v) for t, v in zip(texts, vectors, strict=True)] == plain


def test_other_rules_or_weights_have_their_own_entries() -> None:
    text = "Review this contract clause for the lease"
    plain = RuleTaskClassifier()
    legal = RuleTaskClassifier(with_labels(None, {"legal": {"keywords": {"contract": 3.0}}}))
    assert plain.classify(text).task != "legal"
    assert legal.classify(text).task == "legal"
    assert plain.fingerprint != legal.fingerprint
    vector = get_embedder().embed_one(text)
    strict = LearnedTaskClassifier(rules=legal, rule_override=0.99)
    loose = LearnedTaskClassifier(rules=legal, rule_override=0.0)
    assert loose.classify(text, embedding=vector).task == "legal"  # the rules decide
    assert strict.classify(text, embedding=vector).by == "model"  # not confident enough


def test_a_hit_is_a_copy_and_the_memo_is_bounded() -> None:
    memo = PredictionMemo(maxsize=3)
    first = TaskPrediction("code", 0.9, {"code": 0.9, "chat": 0.1})
    memo.put(b"a", first)
    first.scores["chat"] = 0.5  # the caller changing what it put in
    assert memo.get(b"a") == TaskPrediction("code", 0.9, {"code": 0.9, "chat": 0.1})
    first = TaskPrediction("code", 0.9, {"code": 0.9, "chat": 0.1})
    hit = memo.get(b"a")
    assert hit == first and hit is not first
    assert hit is not None
    hit.scores["code"] = 0.0  # a caller changing its copy
    assert memo.get(b"a") == first

    def fill(start: int) -> None:
        for i in range(start, start + 200):
            memo.put(str(i).encode(), first)

    threads = [threading.Thread(target=fill, args=(n * 1000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(memo) == 3
    assert memo.get(b"a") is None  # the least recently used went first
