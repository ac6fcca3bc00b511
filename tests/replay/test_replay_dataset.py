"""The replay dataset format: round trip, line-and-field errors, arena import, bundled set, CLI."""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from thrifty.cli import datasets as datasets_cli
from thrifty.recordings.dataset import (
    DatasetError,
    RecordedAnswer,
    ReplayRecord,
    bundled_dataset,
    load_dataset,
    messages_key,
    write_dataset,
)
from thrifty.replay.importers.arena import grade_to_quality, import_arena_bench
from thrifty.upstream import messages_key as upstream_messages_key

ARENA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "arena_bench_v1"
FRANCE = {"role": "user", "content": "capital of France?"}


def _row(**override: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "a",
        "messages": [FRANCE],
        "answers": {"gpt-4": {"text": "Paris.", "quality": 1.0, "output_tokens": 2}},
    }
    row.update(override)
    return row


def _write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _records() -> list[ReplayRecord]:
    return [
        ReplayRecord(
            id="a",
            messages=({"role": "system", "content": "Be brief."}, FRANCE),
            params={"temperature": 0},
            tags={"source": "test"},
            answers={
                "gpt-4": RecordedAnswer("Paris.", 1.0, 2),
                "small": RecordedAnswer(None, 0.25, 40),
                "ungraded": RecordedAnswer("Lyon?"),
            },
        ),
        ReplayRecord(id="b", messages=({"role": "user", "content": None},), params={}, tags={},
                     answers={}),
    ]  # fmt: skip


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize("name", ["set.jsonl", "set.jsonl.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = write_dataset(_records(), tmp_path / name)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b'{"')
    loaded = load_dataset(path)
    assert loaded == _records()
    assert loaded[0].key == messages_key([{"content": "Be brief.", "role": "system"}, FRANCE])


def test_write_refuses_what_load_would_refuse(tmp_path: Path) -> None:
    bad = ReplayRecord("x", (FRANCE,), {"model": "gpt-4"}, {}, {})
    with pytest.raises(DatasetError, match=r"out.jsonl:2: field 'params.model'"):
        write_dataset([_records()[0], bad], tmp_path / "out.jsonl")
    with pytest.raises(DatasetError, match="duplicate id 'a'"):
        write_dataset([_records()[0], _records()[0]], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_messages_key_is_shared_with_the_upstream() -> None:
    assert upstream_messages_key is messages_key
    assert messages_key([{**FRANCE, "name": "x"}]) == messages_key([FRANCE])


def test_blank_lines_optional_fields_and_numeric_tags(tmp_path: Path) -> None:
    lines = [b"", orjson.dumps({"id": "x", "messages": [FRANCE], "tags": {"n": 7}}), b"  "]
    (record,) = load_dataset(_write_lines(tmp_path / "d.jsonl", lines))
    assert (record.params, record.tags, record.answers) == ({}, {"n": "7"}, {})


BAD_LINES: list[tuple[str, bytes, str | None, str]] = [
    ("bad JSON", b'{"id": "b", "messages": [', None, "not valid JSON"),
    ("missing id", orjson.dumps({"messages": [FRANCE]}), "id", "missing"),
    ("duplicate id", orjson.dumps(_row()), "id", "duplicate id 'a' (first on line 1)"),
    ("empty messages", orjson.dumps(_row(id="b", messages=[])), "messages", "non-empty list"),
    (
        "bad role",
        orjson.dumps(_row(id="b", messages=[{"role": "robot", "content": "hi"}])),
        "messages[0].role",
        "got 'robot'",
    ),
    (
        "quality 1.5",
        orjson.dumps(_row(id="b", answers={"gpt-4": {"quality": 1.5}})),
        "answers.gpt-4.quality",
        "expected a number in [0, 1], got 1.5",
    ),
    (
        "quality as a word",
        orjson.dumps(_row(id="b", answers={"gpt-4": {"quality": "high"}})),
        "answers.gpt-4.quality",
        "expected a number in [0, 1], got 'high'",
    ),
    (
        "output_tokens -1",
        orjson.dumps(_row(id="b", answers={"m": {"output_tokens": -1}})),
        "answers.m.output_tokens",
        "integer >= 0, got -1",
    ),
    ("unknown key", orjson.dumps({**_row(id="b"), "tgas": {}}), "tgas", "unknown field"),
    (
        "unknown answer key",
        orjson.dumps(_row(id="b", answers={"m": {"qualty": 1}})),
        "answers.m.qualty",
        "unknown field",
    ),
    ("boolean tag", orjson.dumps(_row(id="b", tags={"x": True})), "tags.x", "got true"),
]


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [case[1:] for case in BAD_LINES],
    ids=[case[0] for case in BAD_LINES],
)
def test_bad_line_names_line_and_field(
    tmp_path: Path, line: bytes, field: str | None, problem: str
) -> None:
    path = _write_lines(tmp_path / "d.jsonl", [orjson.dumps(_row()), b"", line])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    error = info.value
    assert (error.line, error.field) == (3, field)
    assert problem in error.problem
    assert str(error).startswith(f"{path}:3:")
    if field is not None:
        assert f"field '{field}'" in str(error)


def test_gzip_by_content_and_unreadable_files(tmp_path: Path) -> None:
    packed = tmp_path / "packed.jsonl"
    packed.write_bytes(gzip.compress(orjson.dumps(_row())))
    assert [r.id for r in load_dataset(packed)] == ["a"]
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(tmp_path / "missing.jsonl")


# --------------------------------------------------------------------------- arena


@pytest.mark.skipif(not ARENA_DIR.is_dir(), reason="needs ../shared/data/arena_bench_v1")
def test_arena_import_on_the_real_data() -> None:
    records = import_arena_bench(ARENA_DIR)
    assert len(records) == 300
    models = {model for record in records for model in record.answers}
    assert len(models) == 15
    assert "mistralai/Mixtral-8x7B-Instruct-v0.1" in models
    assert not {"vicuna-13b-v1.5", "vicuna-7b-v1.5"} & models
    first = records[0]
    assert first.id == "66c00ddde3dc4128a14d6afd5e899342"
    assert first.messages[0]["content"].startswith("What is the  equation of straight line")
    assert first.tags == {"source": "arena-bench-v1"}
    # scores_gpt4_judge.csv row 1: Llama-2-70b-chat 3, Starling-LM-7B-alpha 10, llama-13b 1
    assert first.answers["Llama-2-70b-chat"].quality == 0.2222
    assert first.answers["Starling-LM-7B-alpha"].quality == 1.0
    assert first.answers["llama-13b"].quality == 0.0
    assert sum(len(r.answers) for r in records) < 300 * 15  # empty grades: no entry


def test_grade_rescale() -> None:
    assert [grade_to_quality(g) for g in (1, 5.5, 8, 10)] == [0.0, 0.5, 0.7778, 1.0]


def test_bundled_set_loads() -> None:
    records = load_dataset(bundled_dataset())
    assert len(records) == 300
    assert len({m for r in records for m in r.answers}) == 15
    for record in records:
        assert record.answers
        for answer in record.answers.values():
            assert answer.text is not None
            assert answer.quality is not None and 0.0 <= answer.quality <= 1.0
    assert (bundled_dataset().parent / "NOTICE.md").is_file()
    with pytest.raises(FileNotFoundError):
        bundled_dataset("no-such-set")


# --------------------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="thrifty")
    datasets_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_dataset(_records(), tmp_path / "set.jsonl.gz")
    assert _cli(["datasets", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 records, 3 models, 3 answers (2 with quality)" in out
    assert "1 records without answers" in out
    assert any(line.split()[:3] == ["small", "1", "1"] for line in out.splitlines())

    bad = _write_lines(tmp_path / "bad.jsonl", [orjson.dumps(_row(answers={"m": {"quality": 2}}))])
    assert _cli(["datasets", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1: field 'answers.m.quality'" in err


@pytest.mark.skipif(not ARENA_DIR.is_dir(), reason="needs ../shared/data/arena_bench_v1")
def test_cli_import_arena_matches_the_bundled_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "arena.jsonl.gz"
    assert _cli(["datasets", "import", "arena-bench", str(ARENA_DIR), "-o", str(out)]) == 0
    assert "300 records, 15 models" in capsys.readouterr().out
    assert out.read_bytes() == bundled_dataset().read_bytes()  # reproducible


def test_cli_import_of_a_broken_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _cli(["datasets", "import", "arena-bench", str(tmp_path), "-o", str(tmp_path / "o")])
    assert code == 2
    assert "scores_gpt4_judge.csv: cannot read" in capsys.readouterr().err
