"""The bench modules' one writer: both files, dated names, a trailing newline."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from bench.reporting import RESULTS, result_stem, write_results


def test_writes_json_and_markdown(tmp_path: Path) -> None:
    path = write_results(tmp_path / "2026-01-01-x", {"a": 1}, ["# title", "", "| a |"])
    assert path == tmp_path / "2026-01-01-x.md"
    assert path.read_text() == "# title\n\n| a |\n"
    assert json.loads((tmp_path / "2026-01-01-x.json").read_text()) == {"a": 1}


def test_markdown_only_when_no_result(tmp_path: Path) -> None:
    write_results(tmp_path / "r", None, "text\n\n")
    assert (tmp_path / "r.md").read_text() == "text\n"
    assert not (tmp_path / "r.json").exists()


def test_stem_is_dated_in_the_results_folder() -> None:
    today = dt.date.today().isoformat()
    assert result_stem("soak") == RESULTS / f"{today}-soak"
    assert result_stem("", "2026-02-03") == RESULTS / "2026-02-03"
