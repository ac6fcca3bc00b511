"""Semantic-cache guards and threshold calibration: pure functions, no data outside the repo."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from thrifty.cache.calibrate import ThresholdChoice, evaluate, pick_threshold
from thrifty.cache.guards import DEFAULT_GUARDS, GUARDS, guard_verdict

PAIRS = Path(__file__).resolve().parents[2] / "bench" / "data" / "guard_pairs.jsonl"
# the design half only: the report half is what bench/semantic_cache.py reports
DESIGN = [
    r for r in map(json.loads, PAIRS.read_text("utf-8").splitlines()) if r["split"] == "design"
]
# a lower-case name: the lexicon guard ``kinds`` blocks it, not ``entities``
LOWER_CASE_NAMES = {"How do I convert a DataFrame to JSON with orjson?"}


def rows(kind: str) -> list[dict[str, object]]:
    return [r for r in DESIGN if r["kind"] == kind and r["a"] not in LOWER_CASE_NAMES]


@pytest.mark.parametrize("kind", ["negation", "numbers", "units", "entities", "order"])
def test_each_guard_fires_on_its_own_pairs(kind: str) -> None:
    for row in rows(kind):
        verdict = guard_verdict(str(row["a"]), str(row["b"]))
        assert not verdict.ok and verdict.failed == kind, (row, verdict)
        # and that guard alone blocks it
        assert GUARDS[kind](str(row["a"]), str(row["b"])) is not None


def test_paraphrases_pass_every_guard() -> None:
    for row in rows("paraphrase"):
        assert guard_verdict(str(row["a"]), str(row["b"])).ok, row


def test_antonyms_and_lower_case_names_are_blocked_by_the_lexicon_guards() -> None:
    for row in rows("antonym"):
        assert guard_verdict(str(row["a"]), str(row["b"])).failed == "contrast", row
    for row in (r for r in DESIGN if r["a"] in LOWER_CASE_NAMES):
        assert guard_verdict(str(row["a"]), str(row["b"])).failed == "kinds", row


@pytest.mark.parametrize(
    ("a", "b", "failed"),
    [
        ("Convert 100 km to miles", "Convert 100 miles to km", "units"),
        ("What is 5 minus 3?", "What is 3 minus 5?", "order"),
        ("Is X safe?", "Is X not safe?", "negation"),
        ("Increase it by 50%", "Increase it by 50", "numbers"),
        ("Increase it by 50%", "Increase it by 50 percent", None),
        ("Share twenty one tips", "Share 21 tips", None),
        ("Pay 1,000 dollars", "Pay 1000 USD", None),
        ("What is -4 squared?", "What is 4 squared?", "numbers"),
        ("What is $20 in yen?", "What is €20 in yen?", "units"),
        ("I can't log in", "I cannot log in", None),
        ("No, show me the rest", "Show me the rest", None),
        ("In Python, how do I sort a dict?", "How do I sort a dict in Python?", None),
        ("Is Rust bigger than Go?", "Is Go bigger than Rust?", "order"),
        ("Open https://a.example/x", "Open https://b.example/x", "entities"),
        (
            "Was ist die Hauptstadt von Frankreich?",
            "Was ist die Hauptstadt von Spanien?",
            "entities",
        ),
        ("東京の人口は？", "大阪の人口は？", None),  # no guard applies; must not break
        ("", "", None),
    ],
)
def test_hand_examples(a: str, b: str, failed: str | None) -> None:
    assert guard_verdict(a, b).failed == failed


def test_strict_order_blocks_clause_moves() -> None:
    a, b = "In Python, how do I sort a dict?", "How do I sort a dict in Python?"
    assert guard_verdict(a, b, ("order_strict",)).failed == "order_strict"


def test_unknown_guard_raises() -> None:
    with pytest.raises(ValueError, match="unknown guard"):
        guard_verdict("a", "b", ("nope",))
    assert set(DEFAULT_GUARDS) <= set(GUARDS)


# hand example: sims, same, guards ok
SIMS = [0.99, 0.98, 0.96, 0.95, 0.93, 0.90, 0.80]
SAME = [True, True, False, True, True, False, True]
OK = [True, True, True, True, True, False, True]


def test_evaluate_arithmetic() -> None:
    got = evaluate(0.93, SIMS, SAME, OK)
    assert got["hits"] == 5 and got["false_hits"] == 1
    assert got["false_hit_rate"] == pytest.approx(1 / 5)
    assert got["recall"] == pytest.approx(4 / 5)
    assert evaluate(0.995, SIMS, SAME, OK)["false_hit_rate"] == 0.0  # no hit, no rate


def test_pick_threshold_lowest_within_budget() -> None:
    # budget 0: only above the false pair at 0.96
    assert pick_threshold(SIMS, SAME, OK, 0.0) == ThresholdChoice(0.98, 0.0, 0.4, 2)
    # budget 20%: 0.80 gives 6 hits, 1 false (16.7%); the blocked 0.90 pair never hits
    choice = pick_threshold(SIMS, SAME, OK, 0.2)
    assert choice.threshold == 0.80 and choice.hits == 6 and choice.recall == 1.0
    assert choice.false_hit_rate == pytest.approx(1 / 6)


def test_pick_threshold_none_fits_and_ties() -> None:
    none = pick_threshold([1.0, 0.9], [False, True], [True, True], 0.01)
    assert math.isinf(none.threshold) and none.hits == 0
    # a true and a false pair at the same similarity are hit together
    tie = pick_threshold([0.9, 0.9, 0.95], [True, False, True], [True] * 3, 0.0)
    assert tie.threshold == 0.95
    with pytest.raises(ValueError):
        pick_threshold([0.9], [True, False], [True], 0.01)


def test_a_budget_per_source_is_stricter_than_a_pooled_one() -> None:
    from thrifty.cache.calibrate import pick_operating_point

    # source b's only hit is false: pooled it is 1 of 4 (25%), alone it is 100%
    sims, scores = [0.99, 0.98, 0.97, 0.96], [0.9, 0.9, 0.9, 0.5]
    same, ok, groups = [True, True, False, True], [True] * 4, ["a", "a", "b", "a"]
    pooled = pick_operating_point(sims, scores, same, ok, 0.25, similarity_grid=[0.9])
    each = pick_operating_point(sims, scores, same, ok, 0.25, similarity_grid=[0.9, 0.98],
                                groups=groups)  # fmt: skip
    assert pooled.recall == 1.0
    assert each.similarity_threshold == 0.98 and each.false_hit_rate == 0.0
