"""Split one user message that holds a document *and* the question into the two.

The most common way people write a long-context prompt is one message: the document, then
the question (or the question, then the document). Only the document may be compressed;
the question must reach the model byte for byte, and it is the query the extractive pass
ranks sentences against. Two shapes are recognised, in this order:

1. **Marked sections**: a line that opens with a label (``Question:``, ``## Question``,
   ``Q:``, ``Query:``, ``Task:``, ``Instruction(s):``, ``Options:``/``Choices:`` right
   after it, ``Answer:``), or a ``<question>…</question>`` span. The question runs from
   the last such label to the next context label (``Document:``, ``Context:``, ``Text:``,
   ``Article:``, ``Passage:``, ``Transcript:``, ``Paper:``) or the end; the rest is
   context, before and after it.
2. **A trailing question**: the last paragraph (after a blank line), if it asks something
   (has a ``?`` or opens with a question word or an imperative such as "Answer"); else
   the last sentence, if it ends with ``?``.

No split (``None``) when the question would be most of the message, or the context is
short (``min_context_chars``): then the message is the question, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["QuestionSplit", "split_question"]

_QUESTION_LABEL = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*|\*\*)?(?:question|questions|q|query|task|instructions?)"
    r"(?:\*\*)?[ \t]*[:：]",
    re.IGNORECASE | re.MULTILINE,
)
_CONTEXT_LABEL = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*|\*\*)?(?:document|documents|context|text|article|passage|"
    r"passages|transcript|paper|report|source|sources|email|contract)(?:\*\*)?[ \t]*[:：]",
    re.IGNORECASE | re.MULTILINE,
)
_QUESTION_TAG = re.compile(r"<question>.*?</question>", re.IGNORECASE | re.DOTALL)
_ASKS = re.compile(
    r"\?|^\s*(?:what|which|who|whom|whose|when|where|why|how|is|are|does|do|did|can|could|"
    r"should|would|will|answer|explain|summari[sz]e|list|name|give|find|identify|describe|"
    r"choose|select|tell|according to|based on)\b",
    re.IGNORECASE,
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")

#: The question may be at most this share of the message (else it is not "a document and
#: a question" but one long request).
MAX_QUESTION_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class QuestionSplit:
    """``before + question + after == text``; ``before`` and ``after`` are the context."""

    before: str
    question: str
    after: str
    how: str  # "marked" or "trailing"

    @property
    def context_chars(self) -> int:
        return len(self.before) + len(self.after)


def split_question(text: str, *, min_context_chars: int = 0) -> QuestionSplit | None:
    """The context and the question of ``text``, or None when it is all question.

    >>> s = split_question("Long report text. More text.\\n\\nQuestion: who won?")
    >>> (s.before, s.question, s.how)
    ('Long report text. More text.\\n\\n', 'Question: who won?', 'marked')
    """
    split = _marked(text) or _trailing(text)
    if split is None or not split.question.strip():
        return None
    if len(split.question) > MAX_QUESTION_SHARE * len(text):
        return None
    if split.context_chars < max(1, min_context_chars) or not (split.before + split.after).strip():
        return None
    return split


def _marked(text: str) -> QuestionSplit | None:
    tag = _last(_QUESTION_TAG, text)
    if tag is not None:
        return QuestionSplit(text[: tag.start()], tag.group(0), text[tag.end() :], "marked")
    label = _last(_QUESTION_LABEL, text)
    if label is None:
        return None
    start = label.start()
    following = _CONTEXT_LABEL.search(text, label.end())
    end = following.start() if following is not None else len(text)
    return QuestionSplit(text[:start], text[start:end], text[end:], "marked")


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None


def _trailing(text: str) -> QuestionSplit | None:
    body = text.rstrip()
    breaks = list(_PARAGRAPH_BREAK.finditer(body))
    if breaks:
        cut = breaks[-1].end()
        if _ASKS.search(body[cut:]):
            return QuestionSplit(text[:cut], text[cut:], "", "trailing")
    sentences = list(_SENTENCE_END.finditer(body))
    if sentences and body.endswith("?"):
        cut = sentences[-1].end()
        return QuestionSplit(text[:cut], text[cut:], "", "trailing")
    return None
