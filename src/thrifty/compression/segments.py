"""Split a message's text into what may be rewritten (prose) and what must survive as is.

Protected, passed through byte for byte:

* fenced code blocks (three or more backticks or tildes, up to the matching fence, or to
  the end of the text when unclosed);
* indented code: lines starting with a tab or four spaces;
* ``<keep>…</keep>`` spans: the caller's marker for "never drop this" (the tags themselves
  are removed from what is sent upstream).

JSON blocks in prose (a line starting with ``{`` or ``[`` that parses as JSON) are their
own kind: minified by the lossless pass, kept whole by the extractive one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["prose", "code", "keep", "json"]

KEEP_OPEN, KEEP_CLOSE = "<keep>", "</keep>"
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})", re.MULTILINE)
_KEEP = re.compile(r"<keep>(.*?)</keep>", re.DOTALL)
_INDENTED = re.compile(r"^(?:\t| {4})")
_JSON_START = re.compile(r"^[ \t]*[{\[]", re.MULTILINE)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    kind: Kind

    @property
    def protected(self) -> bool:
        return self.kind != "prose"


def split_segments(text: str) -> list[Segment]:
    """``text`` as consecutive segments; ``"".join`` of their texts gives ``text`` back,
    except that ``<keep>`` tags are dropped (the spans they wrap stay)."""
    out: list[Segment] = []
    for piece, kept in _split_keep(text):
        if kept:
            out.append(Segment(piece, "keep"))
            continue
        for chunk, fenced in _split_fences(piece):
            if fenced:
                out.append(Segment(chunk, "code"))
            else:
                out.extend(_split_indented(chunk))
    return _merge([s for s in out if s.text])


def has_keep_marker(text: str) -> bool:
    return KEEP_OPEN in text


def _split_keep(text: str) -> list[tuple[str, bool]]:
    parts: list[tuple[str, bool]] = []
    last = 0
    for match in _KEEP.finditer(text):
        parts.append((text[last : match.start()], False))
        parts.append((match.group(1), True))
        last = match.end()
    parts.append((text[last:], False))
    return parts


def _split_fences(text: str) -> list[tuple[str, bool]]:
    parts: list[tuple[str, bool]] = []
    pos = 0
    while (start := _FENCE.search(text, pos)) is not None:
        fence = start.group(1)
        closing = re.compile(rf"^[ ]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$",
                             re.MULTILINE)  # fmt: skip
        line_end = text.find("\n", start.end())
        end_match = closing.search(text, line_end + 1) if line_end != -1 else None
        end = len(text) if end_match is None else end_match.end()
        parts.append((text[pos : start.start()], False))
        parts.append((text[start.start() : end], True))
        pos = end
    parts.append((text[pos:], False))
    return parts


def _split_indented(text: str) -> list[Segment]:
    """Indented lines are code; the rest is prose, with JSON blocks cut out of it."""
    out: list[Segment] = []
    for line in text.splitlines(keepends=True):
        kind: Kind = "code" if _INDENTED.match(line) and line.strip() else "prose"
        if out and out[-1].kind == kind:
            out[-1] = Segment(out[-1].text + line, kind)
        else:
            out.append(Segment(line, kind))
    result: list[Segment] = []
    for segment in out:
        result.extend(_split_json(segment.text) if segment.kind == "prose" else [segment])
    return result


def _split_json(text: str) -> list[Segment]:
    out: list[Segment] = []
    pos = 0
    for match in _JSON_START.finditer(text):
        if match.start() < pos:
            continue
        start = match.end() - 1
        try:
            _, end = _DECODER.raw_decode(text, start)
        except ValueError:
            continue
        if end - start < 2 or not _line_ends(text, end):
            continue
        out.append(Segment(text[pos:start], "prose"))
        out.append(Segment(text[start:end], "json"))
        pos = end
    out.append(Segment(text[pos:], "prose"))
    return out


def _line_ends(text: str, end: int) -> bool:
    """The JSON value is the rest of its line (not ``[1] and more prose``)."""
    newline = text.find("\n", end)
    rest = text[end:] if newline == -1 else text[end:newline]
    return not rest.strip()


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for segment in segments:
        if out and out[-1].kind == segment.kind == "prose":
            out[-1] = Segment(out[-1].text + segment.text, "prose")
        else:
            out.append(segment)
    return out
