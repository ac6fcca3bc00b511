"""The deterministic graders and the judge-reply parsers."""

from __future__ import annotations

from thrifty.shadow.graders import (
    ANSWER_RE,
    JUDGE_MARKER,
    QUESTION_RE,
    absolute_prompt,
    deterministic,
    pairwise_prompt,
    parse_pairwise,
    parse_rating,
)

JSON = {"response_format": {"type": "json_object"}}


def test_deterministic_graders_apply_only_where_they_fit() -> None:
    assert deterministic({}, "B", "(b) because") == ("choice", True)
    assert deterministic({}, "B.", "C") == ("choice", False)
    assert deterministic({}, "1,024", "1024") == ("numeric", True)
    assert deterministic({}, "42", "41") == ("numeric", False)
    assert deterministic(JSON, '{"a": 1}', "not json") == ("json", False)
    assert deterministic(JSON, '{"a": 1}', '{"a": 2}') is None  # valid JSON: the judge decides
    assert deterministic({}, "Paris is the capital.", "Paris.") is None


def test_judge_replies_are_parsed_and_never_guessed() -> None:
    assert parse_rating("Rating: [[7]]") == round(6 / 9, 4)
    assert parse_rating("[[3]] first, then Rating: [[10]]") == 1.0
    assert parse_rating("I cannot rate this") is None
    assert parse_pairwise("... [[C]]") == "C"
    assert parse_pairwise("no verdict") is None


def test_prompts_carry_the_marker_and_cut_back_into_question_and_answers() -> None:
    single = absolute_prompt("What is 2+2?", "4")
    assert JUDGE_MARKER in single[0]["content"]
    question = QUESTION_RE.search(single[1]["content"])
    assert question is not None and question.group(1) == "What is 2+2?"
    assert ANSWER_RE.findall(single[1]["content"]) == [("", "4")]
    pair = pairwise_prompt("Q?", "first\nanswer", "second")
    assert ANSWER_RE.findall(pair[1]["content"]) == [("A", "first\nanswer"), ("B", "second")]
