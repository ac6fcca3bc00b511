"""The replay dataset: recorded requests and each model's answer, as JSON Lines.

One request a line (``.jsonl``, or gzip-compressed ``.jsonl.gz``)::

    {"id": "q1", "messages": [{"role": "user", "content": "2+2?"}],
     "params": {"temperature": 0}, "tags": {"source": "demo"},
     "answers": {"gpt-4o": {"text": "4", "quality": 1.0, "output_tokens": 1}}}

:func:`load_dataset` checks every field and raises :class:`DatasetError` naming the
file, the line and the field, so a bad row is found at load time, not as a wrong
number in a report. The format is documented in ``docs/replay-format.md``.

A request matches a row on its messages alone (:func:`messages_key`); params, tools
and the model take no part, so one recording answers every model it holds.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "ROLES",
    "DatasetError",
    "RecordedAnswer",
    "ReplayRecord",
    "bundled_dataset",
    "load_dataset",
    "messages_key",
    "write_dataset",
]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TOP_LEVEL = ("id", "messages", "params", "tags", "answers")
_ANSWER_KEYS = ("text", "quality", "output_tokens")
_RESERVED_PARAMS = ("model", "messages")  # replay chooses the model; messages live on top
_GZIP_MAGIC = b"\x1f\x8b"


def messages_key(messages: Sequence[Mapping[str, Any]]) -> str:
    """The match key: sha256 hex of each message's role + content, keys sorted.

    Extra message fields (``name``, ``tool_calls``) are ignored, so a client that adds
    them still finds its recording.
    """
    canonical = orjson.dumps(
        [{"role": m.get("role"), "content": m.get("content")} for m in messages],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class RecordedAnswer:
    """One model's recorded answer; every part is optional.

    ``quality`` is on a 0..1 scale where higher is better (a judge grade rescaled,
    correctness 0/1); ``None`` means the answer was not graded. ``output_tokens``
    overrides the counted length of ``text``, or stands in for it when ``text`` is None.
    """

    text: str | None = None
    quality: float | None = None
    output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """One recorded request. A model absent from ``answers`` has no recorded answer."""

    id: str
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any]
    tags: dict[str, str]
    answers: dict[str, RecordedAnswer]

    @property
    def key(self) -> str:
        return messages_key(self.messages)


class DatasetError(ValueError):
    """A dataset that cannot be used as-is: names the file, the line and the field."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {problem}")


class _Bad(Exception):
    """Raised while checking one line; becomes a DatasetError with the line number."""

    def __init__(self, field: str | None, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _show(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(field: str, what: str, value: Any) -> _Bad:
    return _Bad(field, f"expected {what}, got {_show(value)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- checks


def _check_messages(value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not value:
        raise _expected("messages", "a non-empty list of messages", value)
    for i, message in enumerate(value):
        field = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _expected(field, "an object", message)
        role = message.get("role")
        if role not in ROLES:
            raise _expected(f"{field}.role", f"one of {', '.join(sorted(ROLES))}", role)
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _expected(f"{field}.content", "a string, a list of parts or null", content)
        if isinstance(content, list) and not all(isinstance(p, dict) for p in content):
            raise _expected(f"{field}.content", "a list of part objects", content)
    return tuple(value)


def _check_params(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _expected("params", "an object", value)
    for name in _RESERVED_PARAMS:
        if name in value:
            raise _Bad(f"params.{name}", "not allowed here (replay chooses the model)")
    return value


def _check_tags(value: Any) -> dict[str, str]:
    """Tags are str → str; numbers are accepted and turned into strings (``7`` → ``"7"``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _expected("tags", "an object of strings", value)
    tags = {}
    for name, tag in value.items():
        if _is_number(tag):
            tag = str(tag)
        if not isinstance(tag, str):
            raise _expected(f"tags.{name}", "a string or a number", tag)
        tags[name] = tag
    return tags


def _check_answer(model: str, value: Any) -> RecordedAnswer:
    field = f"answers.{model}"
    if not isinstance(value, dict):
        raise _expected(field, "an object with text, quality, output_tokens", value)
    unknown = sorted(set(value) - set(_ANSWER_KEYS))
    if unknown:
        raise _Bad(f"{field}.{unknown[0]}", f"unknown field (known: {', '.join(_ANSWER_KEYS)})")
    text = value.get("text")
    if text is not None and not isinstance(text, str):
        raise _expected(f"{field}.text", "a string", text)
    quality = value.get("quality")
    if quality is not None and not (
        _is_number(quality) and math.isfinite(quality) and 0 <= quality <= 1
    ):
        raise _expected(f"{field}.quality", "a number in [0, 1]", quality)
    tokens = value.get("output_tokens")
    if tokens is not None and not (
        isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0
    ):
        raise _expected(f"{field}.output_tokens", "an integer >= 0", tokens)
    return RecordedAnswer(text, None if quality is None else float(quality), tokens)


def _check_answers(value: Any) -> dict[str, RecordedAnswer]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _expected("answers", "an object of model name -> answer", value)
    for model in value:
        if not model.strip():
            raise _Bad("answers", "model names must not be empty")
    return {model: _check_answer(model, answer) for model, answer in value.items()}


def _parse_record(row: Any) -> ReplayRecord:
    """Check one decoded JSON value; raises ``_Bad`` naming the field."""
    if not isinstance(row, dict):
        raise _expected("(line)", "a JSON object", row)
    unknown = sorted(set(row) - set(_TOP_LEVEL))
    if unknown:
        raise _Bad(unknown[0], f"unknown field (known: {', '.join(_TOP_LEVEL)})")
    if "id" not in row:
        raise _Bad("id", "missing (every record needs a unique string id)")
    if not isinstance(row["id"], str) or not row["id"]:
        raise _expected("id", "a non-empty string", row["id"])
    if "messages" not in row:
        raise _Bad("messages", "missing")
    return ReplayRecord(
        id=row["id"],
        messages=_check_messages(row["messages"]),
        params=_check_params(row.get("params")),
        tags=_check_tags(row.get("tags")),
        answers=_check_answers(row.get("answers")),
    )


# --------------------------------------------------------------------------- files


def _read_lines(path: Path) -> list[bytes]:
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DatasetError(path, None, None, f"cannot read: {exc}") from exc
    return raw.splitlines()


def json_lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` of each non-blank line of a JSON Lines file, gzip or
    not; a line that is not JSON raises :class:`DatasetError` naming the file and line."""
    path = Path(path)
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(path, number, None, f"not valid JSON ({exc})") from None


def load_dataset(path: str | Path) -> list[ReplayRecord]:
    """Every record of a ``.jsonl`` / ``.jsonl.gz`` file, in file order; blank lines skipped.

    Raises :class:`DatasetError` at the first bad line, e.g.
    ``data.jsonl:7: field 'answers.gpt-4.quality': expected a number in [0, 1], got 'high'``.
    """
    path = Path(path)
    records: list[ReplayRecord] = []
    first_line: dict[str, int] = {}
    for number, row in json_lines(path):
        try:
            record = _parse_record(row)
        except _Bad as exc:
            raise DatasetError(path, number, exc.field, exc.problem) from None
        if record.id in first_line:
            problem = f"duplicate id {record.id!r} (first on line {first_line[record.id]})"
            raise DatasetError(path, number, "id", problem)
        first_line[record.id] = number
        records.append(record)
    return records


def _record_to_json(record: ReplayRecord) -> dict[str, Any]:
    """The JSON object of one line; empty optional parts and unset answer fields are omitted."""
    row: dict[str, Any] = {"id": record.id, "messages": list(record.messages)}
    if record.params:
        row["params"] = record.params
    if record.tags:
        row["tags"] = record.tags
    if record.answers:
        row["answers"] = {
            model: {
                key: getattr(answer, key)
                for key in _ANSWER_KEYS
                if getattr(answer, key) is not None
            }
            for model, answer in record.answers.items()
        }
    return row


def write_dataset(records: Iterable[ReplayRecord], path: str | Path) -> Path:
    """Write ``records`` as JSON Lines; gzip (level 9, reproducible bytes) if the name ends .gz.

    Every record passes the same checks as :func:`load_dataset` first, so a file this
    writes always loads; a bad record raises :class:`DatasetError` and writes nothing.
    """
    path = Path(path)
    lines = []
    seen: set[str] = set()
    for number, record in enumerate(records, 1):
        row = _record_to_json(record)
        try:
            _parse_record(row)
        except _Bad as exc:
            raise DatasetError(path, number, exc.field, exc.problem) from None
        if record.id in seen:
            raise DatasetError(path, number, "id", f"duplicate id {record.id!r}")
        seen.add(record.id)
        lines.append(orjson.dumps(row) + b"\n")
    data = b"".join(lines)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def bundled_dataset(name: str = "arena_bench_v1") -> Path:
    """Path of a dataset shipped with Thrifty (``recordings/data/<name>.jsonl.gz``)."""
    resource = resources.files("thrifty.recordings").joinpath("data", f"{name}.jsonl.gz")
    path = Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(f"no bundled dataset named {name!r} (looked for {path})")
    return path
