"""Cut prose into sentence-sized units that extractive compression keeps or drops.

Each :class:`Unit` holds its text and the whitespace that followed it, so the kept units
joined in order read like the original with sentences missing. Very short sentences are
merged into the next one (a heading with its first sentence); very long ones (tables,
transcripts without full stops) are cut into windows of about ``max_words`` words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_WORDS = 6
MAX_WORDS = 60
_BOUNDARY = re.compile(
    r"(?<=[.!?])[\"'”’)\]]*[ \t]+(?=[A-Z0-9\"“‘(\[<*#-])"  # end of sentence
    r"|[ \t]*\n\s*"  # a line break
)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Unit:
    body: str
    sep: str

    @property
    def words(self) -> int:
        return len(self.body.split())


def split_units(text: str, *, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> list[Unit]:
    """``text`` as units; ``"".join(u.body + u.sep for u in units) == text``."""
    raw: list[Unit] = []
    pos = 0
    for match in _BOUNDARY.finditer(text):
        end = _boundary_start(text, match)
        if end > pos:
            raw.append(Unit(text[pos:end], text[end : match.end()]))
        elif raw:
            raw[-1] = Unit(raw[-1].body, raw[-1].sep + text[pos : match.end()])
        else:
            raw.append(Unit("", text[pos : match.end()]))
        pos = match.end()
    if pos < len(text):
        raw.append(Unit(text[pos:], ""))
    out: list[Unit] = []
    for unit in _merge_short(raw, min_words):
        out.extend(_cut_long(unit, max_words))
    return out


def _boundary_start(text: str, match: re.Match[str]) -> int:
    """Where the separator starts: closing quotes/brackets stay with their sentence."""
    start = match.start()
    while start < match.end() and not text[start].isspace():
        start += 1
    return start


def _merge_short(units: list[Unit], min_words: int) -> list[Unit]:
    out: list[Unit] = []
    carry: Unit | None = None
    for unit in units:
        if carry is not None:
            unit = Unit(carry.body + carry.sep + unit.body, unit.sep)
            carry = None
        if unit.words < min_words and "\n\n" not in unit.sep:
            carry = unit
        else:
            out.append(unit)
    if carry is not None:
        if out:
            last = out.pop()
            out.append(Unit(last.body + last.sep + carry.body, carry.sep))
        else:
            out.append(carry)
    return out


def _cut_long(unit: Unit, max_words: int) -> list[Unit]:
    if unit.words <= max_words * 1.5:
        return [unit]
    pieces = re.split(r"(\s+)", unit.body)
    out: list[Unit] = []
    words, start = 0, 0
    for i in range(0, len(pieces), 2):
        words += 1
        if words >= max_words and i + 1 < len(pieces):
            out.append(Unit("".join(pieces[start : i + 1]), pieces[i + 1]))
            start, words = i + 2, 0
    out.append(Unit("".join(pieces[start:]), unit.sep))
    return [u for u in out if u.body or u.sep]


def normalise(text: str) -> str:
    """Whitespace-insensitive form, for comparing texts."""
    return _SPACE.sub(" ", text).strip()
