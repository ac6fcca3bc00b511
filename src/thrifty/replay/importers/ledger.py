"""Turn the ledger's captured traffic into a replay dataset ("replay yesterday").

Needs ``ledger.capture_bodies: true`` while the traffic was served. Each answered chat
request becomes a record whose recorded answer is the served model's own. Without shadow
evaluation that answer carries no quality (the upstream model id names it): replayed as-is
it costs what it cost, and a technique that picks another model meets a missing answer.

With shadow evaluation (``docs/shadow.md``) a shadowed request's record holds the served
answer and every candidate's, each with its grade, under the public model names: the
multi-model, graded format of arena-bench, so ``thrifty tune`` works on it unchanged. A
candidate that failed (500, timeout) has no answer there, which replay reports as
missing, never as a made-up grade.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord

_NOT_PARAMS = frozenset({"model", "messages", "metadata"})


def import_ledger(
    path: str | Path, since: float | None = None, *, shadowed_only: bool = False
) -> list[ReplayRecord]:
    """The ledger's captured requests as replay records, oldest first; ``shadowed_only``
    keeps only the requests with shadow answers (what ``thrifty tune --from-ledger`` and
    ``thrifty shadow status`` learn from)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no ledger at {path}")
    store = SqliteLedgerStore(path)
    try:
        return list(_records(store, since, shadowed_only))
    finally:
        store.close()


def _records(
    store: SqliteLedgerStore, since: float | None, shadowed_only: bool
) -> Iterator[ReplayRecord]:
    shadows: dict[str, list[dict[str, Any]]] = {}
    for shadow in store.query_shadows(since=since):
        shadows.setdefault(shadow["request_id"], []).append(shadow)
    for row in store.query_bodies(since=since):
        if row["status"] != "ok" or row["endpoint"] != "chat.completions":
            continue
        graded = shadows.get(row["request_id"])
        if graded:
            answers = _graded_answers(row, graded)
        elif shadowed_only:
            continue
        else:
            answers = {}
            if row["answer_model"]:
                answers[row["answer_model"]] = RecordedAnswer(
                    text=row["answer"], output_tokens=row["output_tokens"]
                )
        request = row["request"]
        yield ReplayRecord(
            id=row["request_id"],
            messages=tuple(request["messages"]),
            params={k: v for k, v in (request.get("params") or {}).items() if k not in _NOT_PARAMS},
            tags={str(k): str(v) for k, v in (row["tags"] or {}).items()},
            answers=answers,
        )


def _graded_answers(row: dict[str, Any], graded: list[dict[str, Any]]) -> dict[str, RecordedAnswer]:
    served = graded[0]["served_model"]
    answers = {
        served: RecordedAnswer(
            text=row["answer"],
            quality=graded[0]["served_quality"],
            output_tokens=row["output_tokens"],
        )
    }
    for shadow in graded:
        if shadow["status"] == "ok" and shadow["answer"] is not None:
            answers[shadow["model"]] = RecordedAnswer(
                text=shadow["answer"], quality=shadow["quality"],
                output_tokens=shadow["output_tokens"],
            )  # fmt: skip
    return answers
