"""The test upstream's answers to packed prompts (several labelled questions in one message).

Written from the format's description (``docs/batching.md``), not by importing Thrifty's
packer, so a mistake on one side is not mirrored on the other. A packed prompt's last user
message holds instructions and then lines ``[n|nonce] question`` (``n`` = 1, 2, ... in
order); each question runs to the next label. The upstream answers every question exactly
as it would answer it asked alone (same text), each on a line starting with its label.

Fault kinds that act only on packed prompts (header ``x-upstream-fault`` or a model fault;
``item=K`` picks the item, default 2):

* ``drop``    — item K's answer is left out;
* ``swap``    — items K and K+1 answer in each other's place: each answer keeps its own
  nonce but takes the other's number, as a model that slipped on the order would;
* ``malform`` — the labels are replaced by plain numbering (``1. ...``), so none parses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from thrifty.messages import text_of

PACK_FAULTS = frozenset({"drop", "swap", "malform"})
_MARK = "questions below on its own"
_LABEL = re.compile(r"^\[(\d{1,3})\|([0-9a-f]{4})\][ \t]*", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class PackedItem:
    number: int
    nonce: str
    question: str


def packed_items(messages: Sequence[Mapping[str, Any]]) -> list[PackedItem] | None:
    """The questions of a packed prompt, or None when the last message is not one."""
    if not messages or messages[-1].get("role") != "user":
        return None
    text = text_of(messages[-1].get("content"))
    if _MARK not in text:
        return None
    matches = list(_LABEL.finditer(text))
    if not matches or [int(m.group(1)) for m in matches] != list(range(1, len(matches) + 1)):
        return None
    items = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        items.append(PackedItem(int(match.group(1)), match.group(2), text[match.end() : end]))
    return [PackedItem(it.number, it.nonce, it.question.strip()) for it in items]


def item_messages(
    messages: Sequence[Mapping[str, Any]], item: PackedItem
) -> list[Mapping[str, Any]]:
    """The conversation as if ``item`` had been asked alone."""
    return [*messages[:-1], {"role": "user", "content": item.question}]


def render_packed(
    items: Sequence[PackedItem], answers: Sequence[str | None], fault: str | None, item: int
) -> str:
    """The packed answer text; ``answers[i]`` None leaves item ``i`` out (no recording)."""
    lines = [
        (it.number, it.nonce, text)
        for it, text in zip(items, answers, strict=True)
        if text is not None
    ]
    k = min(max(item, 1), len(items)) - 1
    if fault == "drop":
        lines = [line for line in lines if line[0] != k + 1]
    elif fault == "swap" and k + 1 < len(lines):
        (n1, c1, t1), (n2, c2, t2) = lines[k], lines[k + 1]
        lines[k], lines[k + 1] = (n1, c2, t2), (n2, c1, t1)
    if fault == "malform":
        return "\n".join(f"{n}. {text}" for n, _, text in lines)
    return "\n".join(f"[{n}|{nonce}] {text}" for n, nonce, text in lines)
