"""Where the pipeline hands finished records: the durable writer, or a collector (replay)."""

from __future__ import annotations

from typing import Protocol

from thrifty.ledger.record import RequestRecord


class LedgerSink(Protocol):
    def submit(self, record: RequestRecord) -> None: ...

    def close(self) -> None: ...


class CollectingSink:
    """Keeps records in memory, in submission order; replay reads them back."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def submit(self, record: RequestRecord) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass
