"""The one interface every ledger store implements (SQLite now, PostgreSQL for scale-out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from thrifty.ledger.record import RequestRecord

__all__ = ["GROUP_BY", "LedgerStore"]

#: Values accepted by :meth:`LedgerStore.aggregate`; "all" yields one group with every row.
GROUP_BY = ("model", "day", "tag", "key", "team", "provider", "api", "all")


@runtime_checkable
class LedgerStore(Protocol):
    """Durable storage of request records.

    Writes come from one thread (the :class:`~thrifty.ledger.writer.LedgerWriter`); reads may
    come from any thread and must not block on, or be blocked by, a write in progress.
    """

    def write_many(self, records: Sequence[RequestRecord]) -> None:
        """Store requests and their attempts in one transaction.

        Idempotent per ``request_id``: a record already stored is skipped, so a batch that is
        retried after an ambiguous failure never duplicates rows.
        """
        ...

    def query_requests(
        self, since: float | None = None, until: float | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Request rows with ``since <= ts < until``, newest first; JSON columns decoded."""
        ...

    def query_attempts(self, request_id: str) -> list[dict[str, Any]]:
        """Attempt rows of one request, in ``seq`` order."""
        ...

    def aggregate(
        self, by: str, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        """Per-group sums for reports; ``by`` is one of :data:`GROUP_BY`.

        Each dict has: key, requests, errors, cancelled, cost, baseline_cost, savings,
        input_tokens, output_tokens, cached_input_tokens, cache_write_tokens,
        reasoning_tokens, cache_write_1h_tokens, audio_tokens, image_tokens (input and
        output), unpriced, estimated. A request with several tags counts once per
        tag when ``by == "tag"``.
        """
        ...

    def technique_savings(
        self, since: float | None = None, until: float | None = None
    ) -> dict[str, float]:
        """Net savings per technique (routing, cascade, cache, ...) booked in scope."""
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...
