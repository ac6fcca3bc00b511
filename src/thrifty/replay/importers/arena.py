"""Import ``arena_bench_v1`` (300 Chatbot Arena prompts, GPT-4-judged answers) for replay.

The source directory (see its README) holds ``questions.jsonl``, ``answers.jsonl.gz``
and ``scores_gpt4_judge.csv``. One record per question:

* ``messages``: the single user prompt; ``tags``: ``{"source": "arena-bench-v1"}``;
* ``answers``: for each of the 15 judged models (the CSV columns), the judged text and
  ``quality = (grade - 1) / 9``, the 1–10 GPT-4 grade rescaled to 0..1 (4 decimals).

A model whose grade cell is empty (the judge output could not be parsed) gets **no**
answer entry for that question, so replay reports it as a missing answer rather than
inventing a grade. The unjudged models (``judged: false``) and the GPT-4 reference
answers are not imported.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from thrifty.recordings.dataset import DatasetError, RecordedAnswer, ReplayRecord, json_lines

__all__ = ["SOURCE_TAG", "grade_to_quality", "import_arena_bench"]

SOURCE_TAG = "arena-bench-v1"
_QUESTIONS = "questions.jsonl"
_ANSWERS = "answers.jsonl.gz"
_SCORES = "scores_gpt4_judge.csv"


def grade_to_quality(grade: float) -> float:
    """A 1–10 judge grade on the 0..1 quality scale: 1 → 0.0, 10 → 1.0."""
    return round((grade - 1) / 9, 4)


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, row in json_lines(path):
        if not isinstance(row, dict):
            raise DatasetError(path, number, None, "expected a JSON object")
        rows.append((number, row))
    return rows


def _string(path: Path, number: int, row: dict[str, Any], field: str) -> str:
    value = row.get(field)
    if not isinstance(value, str):
        raise DatasetError(path, number, field, f"expected a string, got {value!r}")
    return value


def _questions(directory: Path) -> list[tuple[str, str]]:
    path = directory / _QUESTIONS
    return [
        (_string(path, n, row, "question_id"), _string(path, n, row, "prompt"))
        for n, row in _jsonl(path)
    ]


def _judged_answers(directory: Path) -> dict[tuple[str, str], str]:
    path = directory / _ANSWERS
    answers = {}
    for number, row in _jsonl(path):
        if row.get("judged") is True:
            key = (_string(path, number, row, "question_id"), _string(path, number, row, "model"))
            answers[key] = _string(path, number, row, "answer")
    return answers


def _grades(directory: Path) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The judged model names (CSV columns, in order) and grades by question id."""
    path = directory / _SCORES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(path, None, None, f"cannot read: {exc}") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    if not header or header[0] != "question_id":
        raise DatasetError(path, 1, "question_id", "expected the first column 'question_id'")
    models = header[1:]
    grades: dict[str, dict[str, float]] = {}
    for number, cells in enumerate(reader, 2):
        if len(cells) != len(header):
            raise DatasetError(path, number, None, f"expected {len(header)} cells")
        row = grades[cells[0]] = {}
        for model, cell in zip(models, cells[1:], strict=True):
            if not cell.strip():
                continue  # judge output not parseable: no grade, so no answer entry
            try:
                grade = float(cell)
            except ValueError:
                grade = float("nan")
            if not 1 <= grade <= 10:
                raise DatasetError(path, number, model, f"expected a grade 1-10, got {cell!r}")
            row[model] = grade
    return models, grades


def import_arena_bench(directory: str | Path) -> list[ReplayRecord]:
    """One :class:`ReplayRecord` per question of ``arena_bench_v1``, in the source order."""
    directory = Path(directory)
    _, grades = _grades(directory)
    texts = _judged_answers(directory)
    records = []
    for question_id, prompt in _questions(directory):
        answers = {}
        for model, grade in grades.get(question_id, {}).items():
            text = texts.get((question_id, model))
            if text is None:
                problem = f"{model!r} is graded for {question_id!r} but has no judged answer"
                raise DatasetError(directory / _ANSWERS, None, None, problem)
            answers[model] = RecordedAnswer(text=text, quality=grade_to_quality(grade))
        records.append(
            ReplayRecord(
                id=question_id,
                messages=({"role": "user", "content": prompt},),
                params={},
                tags={"source": SOURCE_TAG},
                answers=answers,
            )
        )
    return records
