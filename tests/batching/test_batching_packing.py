"""The packed format: labels, parsing (missing, swapped, malformed, cut), plans, shares."""

from __future__ import annotations

from thrifty.batching.packing import (
    apportion,
    make_labels,
    pack_questions,
    parse_answers,
    plan_chunks,
    split_usage,
)
from thrifty.upstream.packed import packed_items, render_packed
from thrifty.usage import Usage


def _packed(questions: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    labels = make_labels(len(questions))
    return labels, [{"role": "user", "content": pack_questions(questions, labels)}]


def test_round_trip_through_the_upstream_reader() -> None:
    questions = ["What is 2+2?", "Name a prime\nbigger than 10.", "Capital of France?"]
    labels, messages = _packed(questions)
    items = packed_items(messages)
    assert items is not None and [it.question for it in items] == [
        "What is 2+2?",
        "Name a prime\nbigger than 10.",
        "Capital of France?",
    ]
    answers = ["4", "11\nor 13", "Paris"]
    parsed = parse_answers(render_packed(items, answers, None, 2), labels)
    assert parsed.answers == {0: "4", 1: "11\nor 13", 2: "Paris"} and not parsed.problems


def test_missing_swapped_and_malformed_items_are_rejected() -> None:
    labels, messages = _packed(["a?", "b?", "c?", "d?"])
    items = packed_items(messages)
    assert items is not None
    answers = ["A", "B", "C", "D"]
    dropped = parse_answers(render_packed(items, answers, "drop", 2), labels)
    assert dropped.answers == {0: "A", 2: "C", 3: "D"} and dropped.problems[1] == "no answer"
    swapped = parse_answers(render_packed(items, answers, "swap", 2), labels)
    assert swapped.answers == {0: "A", 3: "D"} and set(swapped.problems) == {1, 2}
    malformed = parse_answers(render_packed(items, answers, "malform", 2), labels)
    assert malformed.answers == {} and set(malformed.problems) == {0, 1, 2, 3}


def test_shifted_numbering_is_never_assigned() -> None:
    """A model that skips item 2 and numbers on keeps each question's nonce: caught."""
    labels = make_labels(3)
    nonce = [label[label.index("|") + 1 : -1] for label in labels]
    text = f"[1|{nonce[0]}] A\n[2|{nonce[2]}] C"
    parsed = parse_answers(text, labels)
    assert parsed.answers == {0: "A"} and set(parsed.problems) == {1, 2}


def test_duplicates_empty_cut_and_foreign_labels() -> None:
    labels = make_labels(3)
    text = f"{labels[0]} A\n{labels[0]} A again\n{labels[1]}\n{labels[2]} C [9|ffff] x"
    parsed = parse_answers(text, labels, truncated=True)
    assert parsed.answers == {}
    assert parsed.problems == {
        0: "answered 2 times",
        1: "empty answer",
        2: "the answer was cut off",
    }
    assert "[9|ffff]" in parse_answers(f"{labels[0]} see\n[9|ffff] x", labels[:1]).answers[0]


def test_plan_respects_size_output_and_context_limits() -> None:
    q, budget = [10] * 7, [100] * 7
    plan = plan_chunks(q, budget, fixed_tokens=50, max_batch_size=3,
                       context_window=None, max_output_tokens=None)  # fmt: skip
    assert plan == [[0, 1, 2], [3, 4, 5], [6]]
    by_output = plan_chunks(q, budget, fixed_tokens=50, max_batch_size=20,
                            context_window=None, max_output_tokens=230)  # fmt: skip
    assert [len(c) for c in by_output] == [2, 2, 2, 1]
    by_context = plan_chunks(q, budget, fixed_tokens=50, max_batch_size=20,
                             context_window=300, max_output_tokens=None)  # fmt: skip
    assert all(50 + 18 * len(c) + 108 * len(c) <= 300 for c in by_context)
    assert sum(len(c) for c in by_context) == 7
    too_big = plan_chunks([1000], [10], fixed_tokens=0, max_batch_size=5,
                          context_window=100, max_output_tokens=None)  # fmt: skip
    assert too_big == [[0]]


def test_shares_sum_to_the_call() -> None:
    assert apportion(100, [10, 20, 30]) == [24, 33, 43]
    assert sum(apportion(7, [5, 5, 5])) == 7  # counts above the total: proportional
    usage = Usage(input_tokens=1003, output_tokens=501, cached_input_tokens=512,
                  reasoning_tokens=100)  # fmt: skip
    shares = split_usage(usage, [40, 80, 120], [100, 0, 200])
    assert sum((s for s in shares), Usage()) == usage
    assert shares[1].output_tokens < shares[0].output_tokens < shares[2].output_tokens
    assert all(s.cached_input_tokens <= s.input_tokens for s in shares)
