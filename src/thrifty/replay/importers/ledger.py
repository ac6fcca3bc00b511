"""Turn the ledger's captured traffic into a replay dataset ("replay yesterday").

Needs ``ledger.capture_bodies: true`` while the traffic was served. Each answered chat
request becomes a record whose one recorded answer is the upstream model's own: replayed
as-is it costs what it cost; a technique that picks another model meets a missing
answer (explicit in the report) unless the dataset is merged with recordings of that
model. Answers carry no quality: such a dataset replays for cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord

_NOT_PARAMS = frozenset({"model", "messages", "metadata"})


def import_ledger(path: str | Path, since: float | None = None) -> list[ReplayRecord]:
    if not Path(path).exists():
        raise FileNotFoundError(f"no ledger at {path}")
    store = SqliteLedgerStore(path)
    try:
        return list(_records(store, since))
    finally:
        store.close()


def _records(store: SqliteLedgerStore, since: float | None) -> Iterator[ReplayRecord]:
    for row in store.query_bodies(since=since):
        if row["status"] != "ok" or row["endpoint"] != "chat.completions":
            continue
        request = row["request"]
        answers = {}
        if row["answer_model"]:
            answers[row["answer_model"]] = RecordedAnswer(
                text=row["answer"], output_tokens=row["output_tokens"]
            )
        yield ReplayRecord(
            id=row["request_id"],
            messages=tuple(request["messages"]),
            params={k: v for k, v in (request.get("params") or {}).items() if k not in _NOT_PARAMS},
            tags={str(k): str(v) for k, v in (row["tags"] or {}).items()},
            answers=answers,
        )
