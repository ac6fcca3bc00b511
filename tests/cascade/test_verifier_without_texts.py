"""Tuning a verifier-checked cascade on answers without texts skips the cascade cleanly,
with a message (no traceback) from ``thrifty tune`` itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from thrifty.cascade.search import cascade_space
from thrifty.cli.main import main
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, write_dataset


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


def test_thrifty_tune_with_a_verifier_on_answers_without_texts_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        ReplayRecord(
            id=str(i),
            messages=({"role": "user", "content": f"question {i} about {i % 7}"},),
            params={},
            tags={},
            answers={
                "a": RecordedAnswer(None, float(i % 3 > 0), 5),
                "b": RecordedAnswer(None, 1.0, 5),
            },
        )
        for i in range(30)
    ]
    write_dataset(records, tmp_path / "d.jsonl")
    config = {
        "providers": {"p": {"base_url": "http://127.0.0.1:9/v1"}},
        "models": {"a": {"provider": "p", "price": {"input": 0.5, "output": 1.5}},
                   "b": {"provider": "p", "price": {"input": 10.0, "output": 30.0}}},
        "default_model": "b",
        "cascade": {"enabled": True, "tiers": [{"model": "a", "checks": ["verifier"]},
                                               {"model": "b"}]},
    }  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    args = ["tune", "--dataset", str(tmp_path / "d.jsonl"), "--config", str(tmp_path / "c.yaml"),
            "--out", str(tmp_path / "t.yaml"), "--folds", "2"]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "cascade skipped: the verifier needs both acceptable and unacceptable" in err
    assert "no graded answer texts" in err and "Traceback" not in err
    assert yaml.safe_load((tmp_path / "t.yaml").read_text())["cascade"]["enabled"] is False
