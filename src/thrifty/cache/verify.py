"""The semantic cache's optional second stage: ask a model whether two requests want
the same answer, before serving one's answer to the other.

Conservative by construction: only a clear YES serves the hit; NO, anything unclear, or
a failed call is a miss. The call is an attempt (purpose ``cache_verify``) whose cost is
the cache's overhead, booked against its savings.
"""

from __future__ import annotations

import re

from thrifty.tokens import count_text

INSTRUCTION = (
    "You decide whether a stored answer can be reused. Two user requests follow. Answer "
    "YES only if one correct answer would serve both exactly: the same question, the same "
    "facts, numbers, units, names and direction (A to B is not B to A), the same "
    "constraints, and the same polarity (a negated question is a different question). "
    "Otherwise answer NO. Reply with one word: YES or NO."
)
_YES = re.compile(r"^\W*yes\b", re.IGNORECASE)


def verify_messages(new: str, stored: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": INSTRUCTION},
        {"role": "user", "content": f"Request A:\n{new}\n\nRequest B:\n{stored}"},
    ]


def says_yes(reply: str) -> bool:
    """True only for a reply that starts with YES (NO, hedging, or nothing: False)."""
    return bool(_YES.match(reply.strip()))


def stored_limit(question_tokens: int) -> int:
    """The longest stored question (tokens) the verifier is asked about. A stored question
    more than twice as long is not the same request; the bound also lets a budget reserve
    for the call before it is made (``SemanticCacheStage.worst_case``)."""
    return 2 * question_tokens + 64


def may_ask(question: str, stored: str, model: str) -> bool:
    """Whether ``stored`` is within :func:`stored_limit` (``model``'s tokenizer)."""
    return count_text(stored, model).tokens <= stored_limit(count_text(question, model).tokens)
