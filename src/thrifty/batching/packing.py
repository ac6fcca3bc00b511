"""The packed prompt format: build it, parse answers to it, plan batches, share the bill.

Pure functions (no I/O), so the format can be tested line by line.

A packed prompt is one user message: the instructions, then each question after a label
``[n|nonce]`` at the start of a line (``n`` its 1-based position, ``nonce`` 4 random hex
digits). The model must answer each question on a new line starting with the question's
label. An answer is accepted for item ``i`` only if its label carries item ``i``'s
number *and* nonce, appears once, and has text; a label whose number and nonce disagree
(answers shifted or swapped) condemns both items it names. Rejected items are re-asked
alone, so an answer is never given to the wrong caller because of a numbering slip.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from thrifty.usage import Usage

__all__ = [
    "LABEL_TOKENS",
    "PackedAnswers",
    "apportion",
    "make_labels",
    "pack_questions",
    "parse_answers",
    "plan_chunks",
    "split_usage",
]

INSTRUCTIONS = (
    "Answer each of the {n} questions below on its own, as if it were the only question: "
    "they are unrelated.\n"
    "Format: start each answer on a new line with the question's label exactly as given "
    "(for example {example}), then the answer. Answer every label once, in order, and "
    "write nothing before the first label.\n"
)
_LABEL = re.compile(r"^\[(\d{1,3})\|([0-9a-f]{4})\][ \t]*", re.MULTILINE)
LABEL_TOKENS = 8
"""Tokens a label and its line break cost, in the prompt and again in the answer."""


def make_labels(n: int) -> list[str]:
    """``n`` labels with distinct random nonces: ``[1|3fa0]``, ``[2|9c1e]``, ..."""
    nonces: list[str] = []
    while len(nonces) < n:
        nonce = secrets.token_hex(2)
        if nonce not in nonces:
            nonces.append(nonce)
    return [f"[{i}|{nonce}]" for i, nonce in enumerate(nonces, 1)]


def pack_questions(questions: Sequence[str], labels: Sequence[str]) -> str:
    """The packed user message for ``questions`` under ``labels``."""
    head = INSTRUCTIONS.format(n=len(questions), example=labels[0])
    pairs = zip(labels, questions, strict=True)
    body = "\n".join(f"{label} {question.strip()}" for label, question in pairs)
    return f"{head}\n{body}"


@dataclass(slots=True)
class PackedAnswers:
    """What a packed answer yielded: accepted answers by item index, and why others failed."""

    answers: dict[int, str] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)


def parse_answers(text: str, labels: Sequence[str], *, truncated: bool = False) -> PackedAnswers:
    """Split ``text`` (the model's packed answer) into one answer per label.

    ``truncated`` (``finish_reason == "length"``): the last answer found may be cut, so
    it is rejected too. Labels with unknown nonces are text, not boundaries.
    """
    index_of = {label[label.index("|") + 1 : -1]: i for i, label in enumerate(labels)}
    bounds = [m for m in _LABEL.finditer(text) if m.group(2) in index_of]
    result = PackedAnswers()
    seen: dict[int, int] = {}
    for position, match in enumerate(bounds):
        index = index_of[match.group(2)]
        number = int(match.group(1)) - 1
        seen[index] = seen.get(index, 0) + 1
        if number != index:
            result.problems[index] = f"its answer came under label number {number + 1}"
            if 0 <= number < len(labels):
                result.problems[number] = f"label number {number + 1} carried another nonce"
            continue
        end = bounds[position + 1].start() if position + 1 < len(bounds) else len(text)
        result.answers[index] = text[match.end() : end].strip()
    for index, count in seen.items():
        if count > 1:
            result.problems.setdefault(index, f"answered {count} times")
    if truncated and bounds:
        result.problems.setdefault(index_of[bounds[-1].group(2)], "the answer was cut off")
    for index in range(len(labels)):
        if index not in seen:
            result.problems.setdefault(index, "no answer")
        elif not result.answers.get(index) and index not in result.problems:
            result.problems[index] = "empty answer"
    for index in result.problems:
        result.answers.pop(index, None)
    return result


def plan_chunks(
    question_tokens: Sequence[int],
    answer_budgets: Sequence[int],
    *,
    fixed_tokens: int,
    max_batch_size: int,
    context_window: int | None,
    max_output_tokens: int | None,
) -> list[list[int]]:
    """Split items (in order) into packed calls that fit the model's limits.

    A call's prompt is ``fixed_tokens`` (system prompt, instructions) plus each question
    and its label; its output budget is each answer budget plus a label. A chunk grows
    while it has fewer than ``max_batch_size`` items, its output budget fits
    ``max_output_tokens`` and prompt + output fit ``context_window``. An item that does
    not fit even alone is a chunk of one (sent as an ordinary request).
    """
    chunks: list[list[int]] = []
    current: list[int] = []
    prompt = output = 0
    for index, (q_tokens, budget) in enumerate(zip(question_tokens, answer_budgets, strict=True)):
        add_prompt, add_output = q_tokens + LABEL_TOKENS, budget + LABEL_TOKENS
        fits = (
            len(current) < max_batch_size
            and (max_output_tokens is None or output + add_output <= max_output_tokens)
            and (
                context_window is None
                or fixed_tokens + prompt + add_prompt + output + add_output <= context_window
            )
        )
        if current and not fits:
            chunks.append(current)
            current, prompt, output = [], 0, 0
        current.append(index)
        prompt += add_prompt
        output += add_output
    if current:
        chunks.append(current)
    return chunks


def apportion(total: int, own: Sequence[int]) -> list[int]:
    """Split ``total`` tokens over items: each its ``own`` tokens plus an equal share of
    the rest (the shared part); integer shares that sum exactly to ``total``.

    When the items' own counts exceed ``total`` (a tokenizer disagreement), ``total`` is
    split in proportion to ``own`` instead. Remainders go to the largest fractions
    (ties: earlier items), so the split is deterministic.

    >>> apportion(100, [10, 20, 30])
    [24, 33, 43]
    """
    n = len(own)
    if n == 0:
        return []
    owned = sum(own)
    if owned <= total:
        exact = [o + (total - owned) / n for o in own]
    elif owned > 0:
        exact = [total * o / owned for o in own]
    else:
        exact = [total / n] * n
    shares = [math.floor(x) for x in exact]
    order = sorted(range(n), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def split_usage(usage: Usage, own_input: Sequence[int], own_output: Sequence[int]) -> list[Usage]:
    """One :class:`Usage` per item whose sums equal ``usage`` field by field.

    Input and output tokens by :func:`apportion`; cached and cache-write tokens in
    proportion to each item's input share, reasoning tokens to its output share.
    """
    inputs = apportion(usage.input_tokens, own_input)
    outputs = apportion(usage.output_tokens, own_output)
    cached = _proportional(usage.cached_input_tokens, inputs)
    writes = _proportional(
        usage.cache_write_tokens, [i - c for i, c in zip(inputs, cached, strict=True)]
    )
    reasoning = _proportional(usage.reasoning_tokens, outputs)
    return [
        Usage(
            input_tokens=inputs[i],
            output_tokens=outputs[i],
            cached_input_tokens=cached[i],
            cache_write_tokens=writes[i],
            reasoning_tokens=reasoning[i],
            estimated=usage.estimated,
            approximate=usage.approximate,
        )
        for i in range(len(inputs))
    ]


def _proportional(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights``, largest remainders first."""
    weight = sum(weights)
    if total <= 0 or weight <= 0:
        return [0] * len(weights)
    exact = [total * w / weight for w in weights]
    shares = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares
