"""Judge prompts answered from the dataset's grades (shadow evaluation, end to end).

A shadow grader's prompt carries :data:`thrifty.shadow.graders.JUDGE_MARKER` in its
system message. With a dataset, the test upstream answers such a prompt as a judge that
agrees with the recording: it cuts out the question and the answer(s), finds each
answer's recorded quality under that question, and replies ``Rating: [[g]]`` with
``g = 1 + 9 × quality`` (absolute) or ``[[A]]``/``[[B]]``/``[[C]]`` by comparing the two
qualities (pairwise). A prompt it cannot grade gets None (answered as any other prompt).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from thrifty.messages import text_of
from thrifty.shadow.graders import ANSWER_RE, JUDGE_MARKER, QUESTION_RE
from thrifty.upstream.answers import Dataset


def judge_reply(dataset: Dataset, messages: Sequence[Mapping[str, Any]]) -> str | None:
    if not messages or JUDGE_MARKER not in text_of(messages[0].get("content")):
        return None
    prompt = text_of(messages[-1].get("content"))
    question = QUESTION_RE.search(prompt)
    answers = ANSWER_RE.findall(prompt)
    if question is None or not answers:
        return None
    asked = [{"role": "user", "content": question.group(1)}]
    qualities = [dataset.quality_of(asked, text) for _, text in answers]
    if any(q is None for q in qualities):
        return None
    if len(qualities) == 1:
        return f"Graded from the recording. Rating: [[{1 + 9 * qualities[0]:.5f}]]"
    a, b = qualities[0], qualities[1]
    verdict = "C" if a == b else ("A" if a > b else "B")  # type: ignore[operator]
    return f"Compared from the recording. [[{verdict}]]"
