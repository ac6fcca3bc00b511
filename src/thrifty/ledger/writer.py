"""Writes ledger records off the hot path, in batches, without losing them.

A request's last act is :meth:`LedgerWriter.submit`, which only puts the record on a queue. A
daemon thread wakes every ``flush_interval`` seconds (sooner when ``max_batch`` records are
waiting, or on :meth:`flush`/:meth:`close`) and commits everything queued, in one transaction.
A submit does not wake the thread: waking it per record cost the event loop a thread switch
and a GIL hand-over on every request (measured with py-spy: ~10% of the gateway's CPU).

Durability: :meth:`close` (also run by ``atexit``) writes everything still queued, so a
graceful shutdown loses nothing. A hard crash (SIGKILL, OOM kill) loses at most what was
submitted in the last ``flush_interval``; anything :meth:`flush` returned for is on disk.
A batch the store keeps refusing is appended to a JSON-lines fallback file, never dropped.

Bounds, for a store that stays down or locked: at most ``max_queue`` records wait in
memory (past it, :meth:`submit` appends the record to the fallback file at once); a batch
is retried for at most ``write_timeout`` seconds (then it goes to the fallback file); and
:meth:`close` waits at most ``shutdown_grace`` seconds for the thread, then writes what is
still unwritten to the fallback file itself.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from thrifty.ledger.record import RequestRecord
from thrifty.ledger.stores.base import LedgerStore

__all__ = ["LedgerWriter"]

logger = logging.getLogger("thrifty.ledger")

_RETRY_DELAY = 0.1  # seconds, doubled after each failed attempt, up to _MAX_RETRY_DELAY
_MAX_RETRY_DELAY = 1.0
#: After the grace period, how long close waits for the thread to notice it must give up
#: (one store call); past it the thread is stuck in the store and close writes for it.
_GIVE_UP_WAIT = 2.0


class _Marker:
    """A queue item that is not a record: a flush request, or the stop signal."""

    __slots__ = ("done", "stop")

    def __init__(self, *, stop: bool = False) -> None:
        self.done = threading.Event()
        self.stop = stop


class LedgerWriter:
    """Batches :class:`RequestRecord` writes to a :class:`LedgerStore` on a background thread.

    ``submit`` never blocks and is safe from any thread or event loop. The writer owns the
    store: :meth:`close` closes it. ``fallback_path`` defaults to ``<store.path>.failed.jsonl``
    (or ``thrifty-ledger.failed.jsonl`` for stores without a path); each line there is a
    ``RequestRecord.to_dict()`` that ``RequestRecord.from_dict`` can re-import.

    >>> writer = LedgerWriter(SqliteLedgerStore("ledger.db"))  # doctest: +SKIP
    >>> writer.submit(record)  # doctest: +SKIP
    >>> writer.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        store: LedgerStore,
        flush_interval: float = 0.2,
        max_batch: int = 500,
        fallback_path: str | Path | None = None,
        *,
        max_queue: int = 100_000,
        write_timeout: float = 10.0,
        shutdown_grace: float = 10.0,
    ) -> None:
        if flush_interval <= 0 or max_batch < 1 or max_queue < 1:
            raise ValueError("flush_interval must be > 0, max_batch and max_queue >= 1")
        if write_timeout <= 0 or shutdown_grace <= 0:
            raise ValueError("write_timeout and shutdown_grace must be > 0")
        self.store = store
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.write_timeout = write_timeout
        self.shutdown_grace = shutdown_grace
        self.fallback_path = Path(fallback_path) if fallback_path else _default_fallback(store)
        self._queue: queue.SimpleQueue[RequestRecord | _Marker] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._fallback_lock = threading.Lock()
        self._wake = threading.Event()  # set by flush/close, or when max_batch is waiting
        self._give_up = threading.Event()  # set by close after the grace period
        self._spilling = False  # the queue is full: submits go to the fallback file
        self._inflight: list[RequestRecord] = []  # the batch the thread is writing
        self._closed = False
        #: Called on the writer thread with each batch once it is stored (metrics, logs):
        #: work that must not slow the request path. An observer's error is logged.
        self.observers: list[Callable[[Sequence[RequestRecord]], None]] = []
        self._thread = threading.Thread(target=self._run, name="thrifty-ledger", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def pending(self) -> int:
        """Records submitted but not yet written (to the store or the fallback file)."""
        return self._pending

    def submit(self, record: RequestRecord) -> None:
        """Queue a record for writing; returns at once. With ``max_queue`` records already
        waiting, the record is appended to the fallback file instead."""
        with self._lock:
            if self._closed:
                self._late(record)
                return
            full = self._pending >= self.max_queue
            if not full:
                self._pending += 1
                self._queue.put(record)
                if self._queue.qsize() >= self.max_batch:  # not yet taken by the thread
                    self._wake.set()
            first_spill = full and not self._spilling
            self._spilling = full
        if full:
            if first_spill:
                logger.error(
                    "ledger queue full; records go to the fallback file until it drains",
                    extra={"max_queue": self.max_queue, "fallback_path": str(self.fallback_path)},
                )
            self._to_fallback([record], quiet=True)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every record submitted before this call is written; False on timeout."""
        marker = _Marker()
        with self._lock:
            if self._closed:
                return True
            if not self._thread.is_alive():  # never expected; do not hang the caller
                logger.error("ledger writer thread died", extra={"pending": self._pending})
                return False
            self._queue.put(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self) -> None:
        """Write everything queued, stop the thread and close the store. Idempotent.

        Waits at most ``shutdown_grace`` seconds for the store; then the thread gives up
        and what is still unwritten goes to the fallback file. Should the thread be stuck
        inside the store, close writes the queue and the batch in flight there itself (a
        batch the store then commits after all is in both: re-importing the fallback
        file skips request ids already in the ledger).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            marker = _Marker(stop=True)
            self._queue.put(marker)
        self._wake.set()
        atexit.unregister(self.close)
        self._thread.join(self.shutdown_grace)
        if self._thread.is_alive():
            logger.error(
                "ledger store still busy after the shutdown grace period; the rest goes to "
                "the fallback file",
                extra={"pending": self._pending, "fallback_path": str(self.fallback_path)},
            )
            self._give_up.set()
            self._thread.join(_GIVE_UP_WAIT)
        if self._thread.is_alive():  # stuck in a store call: write for it, leave the store
            self._to_fallback([*self._inflight, *self._drain()])
            return
        self.store.close()

    def _drain(self) -> list[RequestRecord]:
        """Take every record still queued (markers are answered)."""
        records: list[RequestRecord] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return records
            if isinstance(item, _Marker):
                item.done.set()
            else:
                records.append(item)

    def _late(self, record: RequestRecord) -> None:
        """A record that arrived after close: keep it in the fallback file."""
        logger.warning(
            "ledger record submitted after close; appended to fallback file",
            extra={"request_id": record.request_id, "fallback_path": str(self.fallback_path)},
        )
        self._to_fallback([record])

    def _run(self) -> None:
        """Sleep until the interval elapses or someone wakes us; then write what is queued.

        Records are written in queue order, in batches of at most ``max_batch``; a marker
        is answered once everything queued before it is written.
        """
        batch: list[RequestRecord] = []
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()  # before draining: a wake-up set after this is not lost
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Marker):
                    self._write(batch)
                    item.done.set()
                    if item.stop:
                        return
                    continue
                if self._give_up.is_set():  # close's grace period is over
                    batch.append(item)
                    batch += self._drain()
                    self._write(batch)
                    return
                batch.append(item)
                if len(batch) >= self.max_batch:
                    self._write(batch)
            self._write(batch)

    def _write(self, batch: list[RequestRecord]) -> None:
        """Commit ``batch`` (then empty it); retry for up to ``write_timeout`` seconds,
        then fall back to the JSON-lines file."""
        if not batch:
            return
        self._inflight = batch
        deadline = time.monotonic() + self.write_timeout
        delay = _RETRY_DELAY
        attempt = 0
        while True:
            attempt += 1
            if self._give_up.is_set():
                self._to_fallback(batch)
                break
            try:
                self.store.write_many(batch)
                break
            except Exception as exc:
                logger.error(
                    "ledger write failed",
                    extra={"batch_size": len(batch), "attempt": attempt, "error": repr(exc)},
                )
                if time.monotonic() + delay >= deadline or self._give_up.is_set():
                    self._to_fallback(self._one_by_one(batch, exc, deadline))
                    break
                self._give_up.wait(delay)
                delay = min(delay * 2, _MAX_RETRY_DELAY)
        self._inflight = []
        for observe in self.observers:
            try:
                observe(batch)
            except Exception:
                logger.exception("ledger observer failed", extra={"observer": repr(observe)})
        with self._lock:
            self._pending -= len(batch)
            if self._spilling and self._pending < self.max_queue // 2:
                self._spilling = False
                logger.warning("ledger queue drained; records are queued again")
        batch.clear()

    def _one_by_one(
        self, batch: list[RequestRecord], error: Exception, deadline: float
    ) -> list[RequestRecord]:
        """Write a refused batch record by record: one bad record (a value the store cannot
        hold) must not send the whole batch to the fallback file. Returns those refused.
        A store that is locked or down refuses them all: no use trying each."""
        if len(batch) == 1 or _unavailable(error):
            return batch
        refused = []
        for index, record in enumerate(batch):
            if time.monotonic() >= deadline or self._give_up.is_set():
                return refused + batch[index:]
            try:
                self.store.write_many([record])
            except Exception:
                refused.append(record)
        return refused

    def _to_fallback(self, records: Sequence[RequestRecord], quiet: bool = False) -> None:
        if not records:
            return
        lines = "".join(json.dumps(r.to_dict(), default=str) + "\n" for r in records)
        try:
            self.fallback_path.parent.mkdir(parents=True, exist_ok=True)
            with self._fallback_lock, self.fallback_path.open("a", encoding="utf-8") as fh:
                fh.write(lines)
        except OSError as exc:  # last resort: the rows go to the log, not nowhere
            logger.critical(
                "ledger fallback write failed; records follow in this log entry",
                extra={"fallback_path": str(self.fallback_path), "error": repr(exc),
                       "records": lines},
            )  # fmt: skip
            return
        if quiet:
            return
        logger.error(
            "ledger records appended to fallback file",
            extra={"fallback_path": str(self.fallback_path), "records_count": len(records)},
        )


def _unavailable(error: Exception) -> bool:
    """Whether ``error`` says the store cannot be written now (locked, busy, unreachable),
    rather than that a record is bad."""
    text = str(error).lower()
    return any(word in text for word in ("locked", "busy", "connection", "timeout"))


def _default_fallback(store: LedgerStore) -> Path:
    path = getattr(store, "path", None)
    if path is None:
        return Path("thrifty-ledger.failed.jsonl")
    return Path(f"{path}.failed.jsonl")
