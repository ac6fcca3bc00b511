"""Tuning a verifier-checked cascade on answers without texts skips the cascade cleanly."""

from __future__ import annotations

from pathlib import Path

from thrifty.cascade.search import cascade_space
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord


def test_cascade_space_without_answer_texts_turns_the_cascade_off(tmp_path: Path) -> None:
    records = [
        ReplayRecord(
            id=str(i),
            messages=({"role": "user", "content": f"question {i}"},),
            params={},
            tags={},
            answers={"a": RecordedAnswer(None, float(i % 2)), "b": RecordedAnswer(None, 1.0)},
        )
        for i in range(10)
    ]
    section = {"enabled": True, "tiers": [{"model": "a", "checks": ["verifier"]}, {"model": "b"}]}
    said: list[str] = []
    space = cascade_space(section, records, tmp_path, said.append)
    assert [c.patch for c in space] == [{"cascade": {"enabled": False}}]
    assert said and "verifier" in said[0]
