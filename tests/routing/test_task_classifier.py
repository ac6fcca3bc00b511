"""Task classifier: the rules on clear cases, the shipped learned model on unseen prompts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from thrifty.routing.tasks import (
    DEFAULT_RULES,
    TASKS,
    LearnedTaskClassifier,
    RuleTaskClassifier,
    TaskPrediction,
)

RULE_CASES = [
    (
        "```python\ndef add(a, b):\n    return a - b\n```\nWhy does this return the wrong value?",
        "code",
    ),
    ("Fix the bug in my JavaScript function that sorts an array.", "code"),
    ("Translate 'where is the train station?' into French.", "translation"),
    ("How do you say 'thank you very much' in Japanese?", "translation"),
    (
        "Summarize the following article in three bullet points:\n\nThe city council met...",
        "summarization",
    ),
    ("TL;DR of this thread please: ...", "summarization"),
    ("What is 17 * 23 + 4?", "math"),
    ("Solve the equation 3x + 7 = 22 for x.", "math"),
    ("Write a poem about the sea at night.", "creative"),
    (
        "Extract all the dates and people's names from this email and return them as JSON.",
        "extraction",
    ),
    ("Classify the sentiment of these reviews as positive or negative.", "extraction"),
    ("hello! how are you today?", "chat"),
]

# Written for this test (not in the training data), one clear prompt per learned label.
UNSEEN = [
    (
        "Write a Rust function that parses a CSV line into a vector of strings, handling quotes.",
        "code",
    ),
    (
        "My React component re-renders forever when I call setState inside useEffect. "
        "How do I fix it?",
        "code",
    ),
    (
        "A train leaves at 3 pm at 80 km/h; another leaves at 4 pm at 100 km/h. "
        "When does it catch up?",
        "math",
    ),
    ("Prove that the square root of 2 is irrational.", "math"),
    ("Write a short story about a lighthouse keeper who befriends a whale.", "creative"),
    ("Compose a sonnet about the first snow of winter.", "creative"),
    ("What are some good ways to stay motivated while working from home?", "chat"),
    ("Why do people in different cultures greet each other differently?", "chat"),
]


def _valid(p: TaskPrediction) -> None:
    assert set(p.scores) == set(TASKS)
    assert math.isclose(sum(p.scores.values()), 1.0, abs_tol=1e-6)
    assert all(0.0 <= s <= 1.0 for s in p.scores.values())
    assert p.task == max(p.scores, key=p.scores.__getitem__)
    assert p.confidence == pytest.approx(p.scores[p.task])


@pytest.mark.parametrize(("text", "label"), RULE_CASES)
def test_rules_on_clear_examples(text: str, label: str) -> None:
    p = RuleTaskClassifier().classify(text)
    _valid(p)
    assert p.task == label, p.scores
    assert p.by == "rules"


def test_rules_from_a_plain_dict() -> None:
    rules = {
        "default": "chat",
        "labels": {"code": {"keywords": ["kubectl"], "patterns": {r"\bpod\b": 2.0}}},
    }
    clf = RuleTaskClassifier(rules)
    assert clf.classify("kubectl get pod fails").task == "code"
    assert clf.classify("translate this into French").task == "chat"  # no translation rules
    with pytest.raises(ValueError, match="default task label"):
        RuleTaskClassifier({"default": "poetry", "labels": {"code": {"keywords": ["x"]}}})
    assert RuleTaskClassifier(DEFAULT_RULES).classify("Summarize this.").task == "summarization"


def test_rules_scan_head_and_tail_of_huge_prompts() -> None:
    text = "Please summarize this log.\n" + "lorem ipsum dolor " * 5000 + "\nThanks!"
    assert RuleTaskClassifier().classify(text).task == "summarization"


@pytest.fixture(scope="module")
def learned() -> LearnedTaskClassifier:
    return LearnedTaskClassifier()


def test_learned_loads_shipped_weights(learned: LearnedTaskClassifier) -> None:
    meta = learned.meta
    assert meta["test_ids"] and meta["held_out"]["learned"]["accuracy"] > 0
    p = learned.classify("How do I read a file line by line in Go?")
    _valid(p)


@pytest.mark.parametrize(("text", "label"), UNSEEN)
def test_learned_on_unseen_prompts(learned: LearnedTaskClassifier, text: str, label: str) -> None:
    p = learned.classify(text)
    _valid(p)
    assert p.task == label, p.scores


def test_learned_defers_to_rules_for_untrained_labels(learned: LearnedTaskClassifier) -> None:
    p = learned.classify("Translate this paragraph into German: The weather is nice today.")
    assert (p.task, p.by) == ("translation", "rules")
    p = learned.classify("Summarize the key points of the meeting notes below.")
    assert (p.task, p.by) == ("summarization", "rules")


def test_learned_batch_matches_single_and_reuses_embeddings(
    learned: LearnedTaskClassifier,
) -> None:
    texts = [t for t, _ in UNSEEN]
    batch = learned.classify_many(texts)
    from thrifty.embeddings import get_embedder

    vecs = get_embedder().embed(texts)
    for text, vec, b in zip(texts, vecs, batch, strict=True):
        single = learned.classify(text, embedding=vec)
        assert single.task == b.task
        assert np.isclose(single.confidence, b.confidence, atol=1e-5)
