"""How a shadow answer is graded against the served one.

Judges use the MT-Bench prompts (Zheng et al. 2023, "Judging LLM-as-a-Judge"): single
answer grading 1–10, or a pairwise verdict A / B / C (tie), asked in both orders to
cancel the judge's position bias. Every judge prompt starts with :data:`JUDGE_MARKER`
in its system message, so a test upstream can recognise it (real judges ignore it).

Cheap deterministic graders come first where they apply (:func:`deterministic`): a
multiple-choice letter, a numeric answer, JSON validity when JSON was asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from thrifty.messages import text_of

__all__ = [
    "JUDGE_MARKER",
    "absolute_prompt",
    "deterministic",
    "pairwise_prompt",
    "parse_pairwise",
    "parse_rating",
    "question_text",
]

JUDGE_MARKER = "[thrifty-shadow-judge]"

_ABSOLUTE_SYSTEM = f"{JUDGE_MARKER} You are a helpful assistant."
_ABSOLUTE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the "
    "response provided by an AI assistant to the user question displayed below. Your "
    "evaluation should consider factors such as the helpfulness, relevance, accuracy, "
    "depth, creativity, and level of detail of the response. Begin your evaluation by "
    "providing a short explanation. Be as objective as possible. After providing your "
    "explanation, you must rate the response on a scale of 1 to 10 by strictly following "
    'this format: "[[rating]]", for example: "Rating: [[5]]".\n\n'
    "[Question]\n{question}\n\n[The Start of Assistant's Answer]\n{answer}\n"
    "[The End of Assistant's Answer]"
)
_PAIRWISE_SYSTEM = (
    f"{JUDGE_MARKER} Please act as an impartial judge and evaluate the quality of the "
    "responses provided by two AI assistants to the user question displayed below. You "
    "should choose the assistant that follows the user's instructions and answers the "
    "user's question better. Your evaluation should consider factors such as the "
    "helpfulness, relevance, accuracy, depth, creativity, and level of detail of their "
    "responses. Begin your evaluation by comparing the two responses and provide a short "
    "explanation. Avoid any position biases and ensure that the order in which the "
    "responses were presented does not influence your decision. Do not allow the length "
    "of the responses to influence your evaluation. Do not favor certain names of the "
    "assistants. Be as objective as possible. After providing your explanation, output "
    'your final verdict by strictly following this format: "[[A]]" if assistant A is '
    'better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
)
_PAIRWISE = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)

#: The pieces a test upstream cuts a judge prompt at (see ``thrifty.upstream``).
QUESTION_RE = re.compile(r"\[(?:User )?Question\]\n(.*?)\n\n\[The Start of Assistant", re.S)
ANSWER_RE = re.compile(
    r"\[The Start of Assistant(?: (A|B))?'s Answer\]\n(.*?)\n\[The End of Assistant", re.S
)


def question_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """What the judge is shown as the question: a lone user message as is, a longer
    conversation as ``### role`` blocks."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return text_of(messages[0].get("content"))
    return "\n\n".join(f"### {m.get('role')}\n{text_of(m.get('content'))}" for m in messages)


def absolute_prompt(question: str, answer: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": _ABSOLUTE_SYSTEM},
        {"role": "user", "content": _ABSOLUTE.format(question=question, answer=answer)},
    ]


def pairwise_prompt(question: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    text = _PAIRWISE.format(question=question, answer_a=answer_a, answer_b=answer_b)
    return [{"role": "system", "content": _PAIRWISE_SYSTEM}, {"role": "user", "content": text}]


_RATING = re.compile(r"\[\[(\d+(?:\.\d+)?)\]\]")
_VERDICT = re.compile(r"\[\[([ABC])\]\]")


def parse_rating(text: str) -> float | None:
    """The judge's 1–10 grade as a quality in [0, 1] (``(g - 1) / 9``, 4 decimals)."""
    found = _RATING.findall(text or "")
    if not found:
        return None
    grade = min(10.0, max(1.0, float(found[-1])))
    return round((grade - 1) / 9, 4)


def parse_pairwise(text: str) -> str | None:
    """``"A"``, ``"B"``, ``"C"`` (tie), or None when the judge gave no verdict."""
    found = _VERDICT.findall(text or "")
    return found[-1] if found else None


# --------------------------------------------------------------------- deterministic

_LETTER = re.compile(r"^\(?([A-Ea-e])[\).:]?(?:\s|$)")
_NUMBER = re.compile(r"[$€£]?(-?\d[\d,]*(?:\.\d+)?)%?")


def _letter(text: str) -> str | None:
    match = _LETTER.match(text.strip())
    return match.group(1).upper() if match and len(text.strip()) <= 40 else None


def _number(text: str) -> float | None:
    match = _NUMBER.fullmatch(text.strip().rstrip("."))
    if match is None:
        return None
    try:
        return float(match.group(1).replace(",", ""))
    except ValueError:
        return None


def wants_json(body: Mapping[str, Any]) -> bool:
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


def deterministic(body: Mapping[str, Any], served: str, candidate: str) -> tuple[str, bool] | None:
    """``(grader, same)`` when a cheap exact check applies, else None (the judge decides).

    * ``json``: JSON was asked for and the candidate's answer does not parse (never same);
    * ``choice``: both answers are a lone multiple-choice letter: same letter;
    * ``numeric``: both answers are a lone number: equal values.
    """
    if wants_json(body):
        try:
            json.loads(candidate)
        except ValueError:
            return "json", False
    letters = _letter(served), _letter(candidate)
    if letters[0] is not None and letters[1] is not None:
        return "choice", letters[0] == letters[1]
    numbers = _number(served), _number(candidate)
    if numbers[0] is not None and numbers[1] is not None:
        return "numeric", abs(numbers[0] - numbers[1]) <= 1e-9 * max(1.0, abs(numbers[0]))
    return None
