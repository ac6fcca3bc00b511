"""Where every bench module writes its results, so the dated names and formats agree.

Each benchmark leaves two files in ``bench/results/``: ``<date>-<name>.json`` (the
figures, for comparing runs) and ``<date>-<name>.md`` (the report a reader quotes).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def result_stem(name: str, day: str | None = None) -> Path:
    """``bench/results/<day>-<name>`` (today unless ``day``), the folder made if missing."""
    RESULTS.mkdir(exist_ok=True)
    day = day or dt.date.today().isoformat()
    return RESULTS / (f"{day}-{name}" if name else day)


def write_results(
    stem: Path, result: Mapping[str, Any] | None, report: str | Sequence[str]
) -> Path:
    """Write ``stem.json`` (unless ``result`` is None) and ``stem.md``; return the latter."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    if result is not None:
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    text = report if isinstance(report, str) else "\n".join(report)
    path = stem.with_suffix(".md")
    path.write_text(text.rstrip("\n") + "\n", "utf-8")
    return path
