"""The batch job store's protocol: what :class:`~thrifty.batching.jobs.BatchJobs` keeps.

Gateway ids (``file-thr…``, ``batch_thr…``) map to the provider's ids, so a caller never
needs to know where the job runs and cannot read another caller's jobs. Rows are plain
dicts (``models``, ``last`` and hold values already decoded from JSON). Calls block:
the caller runs them off the event loop.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["JobStore"]


class JobStore(Protocol):
    """Files, batches, each file's line estimates and each job's budget hold."""

    def add_file(
        self, file_id: str, *, key_id: str | None, provider: str, upstream_id: str,
        filename: str, purpose: str, size: int, models: dict[str, str],
    ) -> None: ...  # fmt: skip

    def file(self, file_id: str) -> dict[str, Any] | None: ...

    def file_by_upstream(self, provider: str, upstream_id: str) -> dict[str, Any] | None: ...

    def add_batch(
        self, batch_id: str, *, key_id: str | None, provider: str, upstream_id: str,
        input_file_id: str, last: dict[str, Any],
    ) -> None: ...  # fmt: skip

    def batch(self, batch_id: str) -> dict[str, Any] | None: ...

    def update_batch(self, batch_id: str, last: dict[str, Any], *, booked: bool) -> None: ...

    def batches(
        self, key_id: str | None, limit: int, after: str | None
    ) -> list[dict[str, Any]]:
        """The caller's batches, newest first, after the batch ``after`` (a cursor)."""
        ...

    def add_lines(self, file_id: str, lines: dict[str, list[Any]]) -> None: ...

    def lines(self, file_id: str) -> dict[str, list[Any]] | None: ...

    def add_hold(self, batch_id: str, hold: dict[str, Any]) -> None: ...

    def claim_hold(self, batch_id: str) -> dict[str, Any] | None:
        """The job's hold, to the one caller that settles it (None: none, or claimed)."""
        ...
