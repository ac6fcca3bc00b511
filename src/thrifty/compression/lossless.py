"""The safe pass: same content, fewer tokens. Touches prose and JSON, never protected text.

* whitespace: runs of spaces inside a line become one (indentation and tabs stay),
  trailing spaces go, three or more line breaks become one blank line;
* repeated blocks: a prose paragraph (>= ``MIN_REPEAT_CHARS``) already seen earlier in the
  compressible context is dropped;
* JSON blocks are minified: whitespace outside string literals removed, every literal
  (numbers included) kept exactly as written.
"""

from __future__ import annotations

import re

from thrifty.compression.segments import Segment

MIN_REPEAT_CHARS = 80
_INNER_SPACES = re.compile(r"(?<=\S) {2,}")  # spaces only: tabs may separate table cells
_TRAILING = re.compile(r"[ \t]+(?=\n)")  # not at the very end: a <keep> span may follow
_BLANK_RUNS = re.compile(r"\n{3,}")
_PARAGRAPHS = re.compile(r"(\n\s*\n)")
_WS = re.compile(r"\s+")


def lossless(segments: list[Segment], seen: set[str]) -> list[Segment]:
    """Normalise ``segments``; ``seen`` carries paragraphs across a request's messages."""
    out: list[Segment] = []
    for segment in segments:
        if segment.kind == "prose":
            text = drop_repeats(normalise_whitespace(segment.text), seen)
            out.append(Segment(text, "prose"))
        elif segment.kind == "json":
            out.append(Segment(minify_json(segment.text), "json"))
        else:
            out.append(segment)
    return out


def normalise_whitespace(text: str) -> str:
    text = _INNER_SPACES.sub(" ", text)
    text = _TRAILING.sub("", text)
    return _BLANK_RUNS.sub("\n\n", text)


def drop_repeats(text: str, seen: set[str]) -> str:
    """Remove paragraphs already in ``seen`` (whitespace-insensitive); add the new ones."""
    parts = _PARAGRAPHS.split(text)
    kept: list[str] = []
    dropped_last = False
    for index, part in enumerate(parts):
        if index % 2 == 1:  # a separator
            if not dropped_last:
                kept.append(part)
            continue
        key = _WS.sub(" ", part).strip()
        if len(key) >= MIN_REPEAT_CHARS and key in seen:
            dropped_last = True
            continue
        if len(key) >= MIN_REPEAT_CHARS:
            seen.add(key)
        dropped_last = False
        kept.append(part)
    return "".join(kept)


def minify_json(text: str) -> str:
    """``text`` (valid JSON) without the whitespace outside string literals."""
    out: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char not in " \t\r\n":
            out.append(char)
    return "".join(out)
