"""Splitting one user message into its document and its question."""

from __future__ import annotations

import pytest

from thrifty.compression.question import split_question

DOC = "The committee met on Tuesday. It discussed the budget at length. " * 20


@pytest.mark.parametrize(
    ("text", "question", "how"),
    [
        (f"{DOC}\n\nQuestion: Who chaired the meeting?", "Question: Who chaired the meeting?",
         "marked"),
        (f"{DOC}\n\n## Question:\nWho chaired it?\nOptions: A. Ann B. Bo",
         "## Question:\nWho chaired it?\nOptions: A. Ann B. Bo", "marked"),
        (f"Question: who chaired it?\n\nTranscript: {DOC}", "Question: who chaired it?\n\n",
         "marked"),
        (f"{DOC}<question>Who chaired it?</question>", "<question>Who chaired it?</question>",
         "marked"),
        (f"{DOC}\n\nBased on the text, summarise the budget debate.",
         "Based on the text, summarise the budget debate.", "trailing"),
        (f"{DOC}Who chaired the meeting?", "Who chaired the meeting?", "trailing"),
    ],
)  # fmt: skip
def test_shapes(text: str, question: str, how: str) -> None:
    split = split_question(text)
    assert split is not None and split.question == question and split.how == how
    assert split.before + split.question + split.after == text


@pytest.mark.parametrize(
    "text",
    [
        "Who chaired the meeting?",  # all question
        f"{DOC}",  # no question at all
        f"Intro.\n\nQuestion: {DOC}?",  # the "question" is most of the message
    ],
)
def test_no_split(text: str) -> None:
    assert split_question(text) is None


def test_short_context_is_not_split() -> None:
    assert split_question("Short note.\n\nQuestion: why?", min_context_chars=200) is None
    assert split_question(f"{DOC}\n\nQuestion: why?", min_context_chars=200) is not None
