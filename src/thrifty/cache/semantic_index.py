"""The semantic cache's index: question embeddings per partition, searched in process.

A partition is everything a stored answer depends on except the wording of the final
question (tenant, model, parameters, earlier messages; see ``keys.semantic_partition``),
so a search only ever compares like with like. Vectors live in one contiguous float32
matrix per partition, grown by doubling. Up to ``PREFILTER_FROM`` entries a search is an
exact top-1 by dot product. Above it, scanning the float matrix is memory-bound (100k ×
256 float32 = 102 MB per query, ~10 ms; 10k: ~1.5 ms on this shared machine, most of a
semantic miss's 2 ms budget), so each vector also gets a
256-bit sign code (after subtracting the partition's mean, fixed when the code is first
built); a search computes every code's Hamming distance (3.2 MB at 100k) and reranks
the ``RERANK`` nearest (and ties) exactly. ``bench/semantic_cache.py`` measures both
paths and how often the prefilter's top-1 equals the exact one. Approximate on purpose: a
missed top-1 turns a hit into a miss, never into a wrong answer (the guards and the pair
check judge whatever is found). Entries are persisted in SQLite and loaded at start, so a
restart keeps the cache. Bounded by ``max_entries`` (oldest first out) and by TTL.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thrifty.stores.sqlite import connect

_SCHEMA = """CREATE TABLE IF NOT EXISTS semantic_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, partition TEXT NOT NULL, scope TEXT NOT NULL,
    question TEXT NOT NULL, vector BLOB NOT NULL, response BLOB NOT NULL,
    created_at REAL NOT NULL, expires_at REAL)"""
_NEVER = float("inf")
PREFILTER_FROM = 4_096  # entries per partition above which the sign-code prefilter runs
RERANK = 64  # prefilter candidates scored exactly


@dataclass(frozen=True, slots=True)
class Match:
    entry_id: int
    similarity: float
    question: str
    response: bytes


@dataclass
class _Partition:
    ids: list[int] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    expires: list[float] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    position: dict[int, int] = field(default_factory=dict)
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    codes: np.ndarray | None = None  # uint64 (words, capacity): sign codes, column per entry
    center: np.ndarray | None = None  # subtracted before taking signs
    prefilter_from: int = PREFILTER_FROM

    def add(
        self, entry_id: int, question: str, vector: np.ndarray, response: bytes, expires: float
    ) -> None:
        n = len(self.ids)
        if self.matrix.shape[0] <= n:  # grow by doubling: no re-stacking per insert
            grown = np.zeros((max(16, 2 * n), vector.shape[0]), dtype=np.float32)
            if n:
                grown[:n] = self.matrix[:n]
            self.matrix = grown
            if self.codes is not None:
                codes = np.zeros((self.codes.shape[0], grown.shape[0]), dtype=np.uint64)
                codes[:, :n] = self.codes[:, :n]
                self.codes = codes
        self.matrix[n] = vector
        self.position[entry_id] = n
        self.ids.append(entry_id)
        self.questions.append(question)
        self.responses.append(response)
        self.expires.append(expires)
        if self.codes is not None:
            self.codes[:, n] = self.code(vector)[:, 0]
        elif n + 1 >= self.prefilter_from:
            self._build_codes()

    def code(self, vectors: np.ndarray) -> np.ndarray:
        """Sign codes of ``vectors`` (rows) around ``center``: uint64 (words, rows)."""
        assert self.center is not None
        rows = np.atleast_2d(vectors)
        padded = np.zeros((rows.shape[0], self.center.shape[0]), dtype=np.float32)
        padded[:, : rows.shape[1]] = rows
        return np.packbits(padded - self.center > 0, axis=1).view(np.uint64).T

    def _build_codes(self) -> None:
        n, dims = len(self.ids), self.matrix.shape[1]
        self.center = np.zeros(-(-dims // 64) * 64, dtype=np.float32)
        self.center[:dims] = self.matrix[:n].mean(axis=0)
        self.codes = np.zeros((self.center.shape[0] // 64, self.matrix.shape[0]), np.uint64)
        self.codes[:, :n] = self.code(self.matrix[:n])

    def best(self, vector: np.ndarray) -> tuple[int, float]:
        """(position, similarity) of the most similar entry; prefiltered when coded."""
        n = len(self.ids)
        if self.codes is None or n <= RERANK:
            scores = self.matrix[:n] @ vector
            top = int(np.argmax(scores))
            return top, float(scores[top])
        query = self.code(vector)[:, 0]
        distance = np.bitwise_count(self.codes[0, :n] ^ query[0]).astype(np.uint16)
        for word in range(1, self.codes.shape[0]):
            distance += np.bitwise_count(self.codes[word, :n] ^ query[word])
        # the RERANK nearest codes (and any tied with the last): a histogram of the
        # distances is ~2x cheaper than argpartition over all entries
        cut = int(np.searchsorted(np.cumsum(np.bincount(distance)), RERANK))
        candidates = np.flatnonzero(distance <= cut)
        scores = self.matrix[candidates] @ vector
        top = int(np.argmax(scores))
        return int(candidates[top]), float(scores[top])

    def remove(self, entry_id: int) -> None:
        """Swap the last entry into the removed one's place: O(1)."""
        position = self.position.pop(entry_id)
        last = len(self.ids) - 1
        for column in (self.ids, self.questions, self.responses, self.expires):
            column[position] = column[last]  # type: ignore[index]
            column.pop()
        if position != last:
            self.matrix[position] = self.matrix[last]
            if self.codes is not None:
                self.codes[:, position] = self.codes[:, last]
            self.position[self.ids[position]] = position


class SemanticIndex:
    """Thread-safe; ``path=None`` keeps everything in memory (replay, tests)."""

    def __init__(
        self, path: str | Path | None, max_entries: int, *, prefilter_from: int = PREFILTER_FROM
    ) -> None:
        self._lock = threading.Lock()
        self._partitions: dict[str, _Partition] = {}
        self._where: dict[int, str] = {}
        self._order: deque[int] = deque()  # insertion order, for oldest-first eviction
        self._max = max_entries
        self._prefilter_from = prefilter_from
        self._next_id = 1
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = connect(path, timeout_s=5.0)
            self._db.execute(_SCHEMA)
            self._load()

    def _load(self) -> None:
        assert self._db is not None
        self._db.execute(
            "DELETE FROM semantic_entries WHERE expires_at IS NOT NULL AND expires_at < ?",
            (time.time(),),
        )
        rows = self._db.execute(
            "SELECT id, partition, question, vector, response, expires_at "
            "FROM semantic_entries ORDER BY id"
        )
        for entry_id, partition, question, vector, response, expires in rows.fetchall():
            vec = np.frombuffer(vector, dtype=np.float32)
            self._insert(entry_id, partition, question, vec, response, expires or _NEVER)
            self._next_id = max(self._next_id, entry_id + 1)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._where

    def _insert(
        self,
        entry_id: int,
        partition: str,
        question: str,
        vector: np.ndarray,
        response: bytes,
        expires: float,
    ) -> None:
        part = self._partitions.get(partition)
        if part is None:
            part = self._partitions[partition] = _Partition(prefilter_from=self._prefilter_from)
        part.add(entry_id, question, vector, response, expires)
        self._where[entry_id] = partition
        self._order.append(entry_id)

    def search(self, partition: str, vector: np.ndarray) -> Match | None:
        """The most similar live entry of ``partition``, or None (expired ones are dropped)."""
        with self._lock:
            part = self._partitions.get(partition)
            now = time.time()
            while part is not None and part.ids:
                best, similarity = part.best(vector)
                if part.expires[best] >= now:
                    question, response = part.questions[best], part.responses[best]
                    return Match(part.ids[best], similarity, question, response)
                self._remove(part.ids[best])
            return None

    def add(
        self,
        partition: str,
        scope: str,
        question: str,
        vector: np.ndarray,
        response: bytes,
        ttl_s: float | None,
    ) -> int:
        expires = time.time() + ttl_s if ttl_s else _NEVER
        vector = np.asarray(vector, dtype=np.float32)
        with self._lock:
            entry_id = self._next_id
            if self._db is not None:
                cursor = self._db.execute(
                    "INSERT INTO semantic_entries (partition, scope, question, vector, response, "
                    "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (partition, scope, question, vector.tobytes(), response, time.time(),
                     None if expires == _NEVER else expires),
                )  # fmt: skip
                entry_id = int(cursor.lastrowid or entry_id)
            self._next_id = entry_id + 1
            self._insert(entry_id, partition, question, vector, response, expires)
            while len(self._where) > self._max and self._order:
                self._remove(self._order.popleft())  # oldest first; removed ids are skipped
        return entry_id

    def remove(self, entry_id: int) -> None:
        """Forget one entry (no-op if it is gone); the Redis index uses it to invalidate."""
        with self._lock:
            self._remove(entry_id)

    def _remove(self, entry_id: int) -> None:
        partition = self._where.pop(entry_id, None)
        if partition is None:
            return
        self._partitions[partition].remove(entry_id)
        if self._db is not None:
            self._db.execute("DELETE FROM semantic_entries WHERE id = ?", (entry_id,))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
