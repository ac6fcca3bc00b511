"""The ``judge`` check: a cheap model grades the answer 1-10 with a fixed rubric.

The rubric is fixed (not configurable) so scores stay comparable across tiers, runs and
replays, and thresholds tuned on one run stay meaningful on the next. Judges rarely follow
the output format exactly, so ``parse_rating`` accepts the usual variants.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from thrifty.cascade.checks import (
    JudgeCall,
    OptionReader,
    Verdict,
    answer_message,
    text_of,
)

log = logging.getLogger(__name__)

RUBRIC = """\
You are a strict, impartial grader of an AI assistant's answer. You will see the \
instructions the assistant was given, the user's question and the assistant's answer.

Judge correctness first: an answer with a factual error, a wrong result, or code that would \
not work gets at most 3, however well written. Then judge whether it answers everything \
that was asked, follows the user's instructions (format, length, language) and is clear. \
Do not reward length for its own sake; a short answer that is correct and complete is a 10.

Scale:
1 = wrong, empty, off-topic, nonsense, or refuses a reasonable request.
5 = partly right: the main point is correct but there are errors, gaps, or ignored \
instructions.
10 = fully correct and complete, follows every instruction; an expert would not change it.
Use the whole scale from 1 to 10.

Give at most two sentences of justification, then your rating on the last line, exactly \
in this form: Rating: [[N]] where N is an integer from 1 to 10."""

PROMPT = """\
[Instructions the assistant was given]
{system}

[The user's question]
{question}

[The start of the assistant's answer]
{answer}
[The end of the assistant's answer]"""


def judge_messages(system: str, question: str, answer: str) -> list[dict[str, Any]]:
    """The chat messages sent to the judge model: the rubric, then the case to grade."""
    case = PROMPT.format(system=system or "(none)", question=question, answer=answer)
    return [{"role": "system", "content": RUBRIC}, {"role": "user", "content": case}]


# --- parsing the judge's text -----------------------------------------------------------

_NUM = r"(\d{1,3}(?:\.\d+)?)"
_SP = r"[^\S\n]*"  # spaces on the same line
_TIERS = (
    # [[7]], [[ 7 ]], [[7/10]]
    re.compile(rf"\[\[{_SP}\**{_SP}{_NUM}{_SP}(?:/{_SP}(\d+))?{_SP}\**{_SP}\]\]"),
    # Rating: 7, **Rating:** 8, Score = 6.5, Overall score (1-10): 7/10, my rating is 8
    re.compile(
        rf"\b(?:rating|score|grade|mark)\b{_SP}\**{_SP}(?:\([^)\n]{{0,20}}\))?{_SP}"
        rf"(?:[:=\-–—]|is|of|would be)?{_SP}\**{_SP}(?<![\d.]){_NUM}\**"
        rf"(?:{_SP}(?:/|out of){_SP}(\d+))?",
        re.IGNORECASE,
    ),
    # 7/10, **8**/10, 8 out of 10
    re.compile(rf"(?<![\d.]){_NUM}\**{_SP}(?:/|out of){_SP}(10)\b", re.IGNORECASE),
    # I would rate this a 9, I'd give it an 8
    re.compile(
        rf"\b(?:rate|give|assign|award)\b(?:{_SP}\b(?:it|this|that|the|answer|response|a|an|"
        rf"as|at|with|rating|score|of)\b)*{_SP}\**(?<![\d.]){_NUM}(?![\d.]*%)",
        re.IGNORECASE,
    ),
    # the whole reply is a number: "7", "**8**."
    re.compile(rf"\A\W*{_NUM}\W*\Z"),
)
_THINK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)


def parse_rating(text: str) -> float | None:
    """The 1-10 rating in a judge's reply, or ``None`` when there is none.

    Patterns are tried from most to least explicit (``[[N]]``, ``Rating: N``, ``N/10``,
    "rate it N", a bare number); the first pattern with an in-range match wins and, within
    it, the last match (judges revise). Numbers outside 1..10 are ignored. ``N/D`` with another
    denominator is rescaled to 10 (``4/5`` -> 8). ``<think>`` blocks are skipped.
    """
    text = _THINK.sub(" ", text)
    for pattern in _TIERS:
        ratings = [_value(m) for m in pattern.finditer(text)]
        in_range = [r for r in ratings if r is not None and 1.0 <= r <= 10.0]
        if in_range:
            return in_range[-1]
    return None


def _value(match: re.Match[str]) -> float | None:
    number = float(match.group(1))
    denominator = match.group(2) if match.re.groups >= 2 else None
    if denominator is None or int(denominator) == 10:
        return number
    scale = int(denominator)
    return number / scale * 10 if scale > 0 and number <= scale else None


# --- the check --------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters not shown]"


class JudgeCheck:
    """Ask the judge model to rate the answer; score = (rating - 1) / 9.

    Abstains (returns ``None``) when no judge is configured, the answer has no text (tool
    calls), or the judge's reply holds no rating: an unreadable grade says nothing about the
    answer, so it must not reject it; the other checks still decide.
    Errors raised by the ``JudgeCall`` propagate to the cascade.
    """

    name = "judge"
    needs_logprobs = False
    needs_judge = True

    def __init__(self, *, max_answer_chars: int = 8000, max_question_chars: int = 8000) -> None:
        self.max_answer_chars = max_answer_chars
        self.max_question_chars = max_question_chars

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> JudgeCheck:
        read = OptionReader(cls.name, options)
        max_answer = read.integer("max_answer_chars", 8000, low=1)
        max_question = read.integer("max_question_chars", 8000, low=1)
        read.done()
        return cls(max_answer_chars=max_answer, max_question_chars=max_question)

    def messages(self, request: Mapping[str, Any], answer: str) -> list[dict[str, Any]]:
        """The judge prompt for this request and answer, truncated to the limits."""
        system, question = "", ""
        for message in request.get("messages") or []:
            if not isinstance(message, dict):
                continue
            if message.get("role") in ("system", "developer"):
                system += text_of(message.get("content")) + "\n"
            elif message.get("role") == "user":
                question = text_of(message.get("content"))
        return judge_messages(
            _clip(system.strip(), self.max_question_chars),
            _clip(question, self.max_question_chars),
            _clip(answer, self.max_answer_chars),
        )

    async def __call__(
        self, request: dict[str, Any], response: dict[str, Any], judge: JudgeCall | None
    ) -> Verdict | None:
        if judge is None:
            log.debug("judge check abstains: no judge configured")
            return None
        answer = text_of(answer_message(response).get("content")).strip()
        if not answer:
            log.debug("judge check abstains: no text answer to grade")
            return None
        reply = await judge(self.messages(request, answer))
        rating = parse_rating(reply)
        if rating is None:
            log.info(
                "judge check abstains: judge gave no rating", extra={"judge_reply": reply[:200]}
            )
            return None
        shown = f"{rating:g}"
        return Verdict(self.name, (rating - 1.0) / 9.0, f"judge rated {shown}/10")
