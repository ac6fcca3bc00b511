"""The read side the SQLite and PostgreSQL ledger stores share: the same queries.

Both stores have the same tables and columns, so a report must read them with the same
SQL; kept in one place, the two cannot drift apart. A store subclasses
:class:`SqlLedgerReads` and supplies what differs between the databases: the parameter
placeholder, the sums in its dialect (``_SUMS``, ``_SAVINGS``), how a query runs
(``_fetch``) and how a row is decoded (``_decode``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from thrifty.ledger.stores.base import GROUP_BY

# Group key and FROM clause per ``by``; requests without the field get a visible placeholder.
GROUPS: dict[str, tuple[str, str]] = {
    "model": ("COALESCE(r.model, r.requested_model)", "requests r"),
    "day": ("r.day", "requests r"),
    "key": ("COALESCE(r.key_id, '(no key)')", "requests r"),
    "team": ("COALESCE(r.team, '(no team)')", "requests r"),
    "provider": ("COALESCE(r.provider, '(none)')", "requests r"),
    "api": ("COALESCE(r.api, r.endpoint)", "requests r"),
    "all": ("'all'", "requests r"),
    "tag": (
        "COALESCE(t.key || '=' || t.value, '(untagged)')",
        "requests r LEFT JOIN request_tags t ON t.request_id = r.request_id",
    ),
}


class SqlLedgerReads:
    """``query_*``, ``aggregate``, ``technique_savings`` and ``close`` for a SQL store."""

    _MARK = "?"
    """The driver's parameter placeholder."""
    _SUMS = ""
    """The ``aggregate`` columns, in the database's dialect."""
    _SAVINGS = ""
    """``FROM`` of ``technique_savings``: the requests joined to their savings entries,
    as ``s.key`` (technique) and ``s.value``; the SELECT sums ``s.value``."""
    _SAVED = ""
    """The summed saving of ``technique_savings``, in the database's dialect."""

    _closed: bool
    _write_lock: threading.Lock
    _read_lock: threading.Lock
    _writer: Any
    _reader: Any

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """The rows of one query, as plain dicts (undecoded)."""
        raise NotImplementedError

    def _decode(self, row: dict[str, Any]) -> dict[str, Any]:
        """A request or attempt row as callers see it (JSON and boolean columns)."""
        raise NotImplementedError

    def _decode_body(self, row: dict[str, Any]) -> dict[str, Any]:
        """A captured body row (the request column as JSON)."""
        return row

    def _time_filter(
        self, column: str, since: float | None, until: float | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append(f"{column} >= {self._MARK}")
            params.append(since)
        if until is not None:
            clauses.append(f"{column} < {self._MARK}")
            params.append(until)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params

    def query_requests(
        self, since: float | None = None, until: float | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        where, params = self._time_filter("ts", since, until)
        sql = f"SELECT * FROM requests {where} ORDER BY ts DESC"
        if limit is not None:
            sql += f" LIMIT {self._MARK}"
            params.append(int(limit))
        return [self._decode(row) for row in self._fetch(sql, params)]

    def query_bodies(
        self, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        """Captured requests with their answers, oldest first (see ``ledger.capture_bodies``)."""
        where, params = self._time_filter("r.ts", since, until)
        sql = (
            "SELECT r.request_id, r.ts, r.tags, r.status, r.endpoint, r.output_tokens, r.model, "
            "b.request, b.answer, b.answer_model "
            f"FROM requests r JOIN request_bodies b ON b.request_id = r.request_id {where} "
            "ORDER BY r.ts"
        )
        return [self._decode_body(row) for row in self._fetch(sql, params)]

    def query_shadows(
        self, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        """Shadow answers (``shadow_answers``), oldest first; ``detail`` decoded."""
        where, params = self._time_filter("ts", since, until)
        sql = f"SELECT * FROM shadow_answers {where} ORDER BY ts, request_id, model"
        return [self._decode(row) for row in self._fetch(sql, params)]

    def shadow_spend(self, since: float | None = None) -> list[dict[str, Any]]:
        """Per UTC day: the cost of shadow evaluation records and how many are unpriced."""
        where, params = self._time_filter("ts", since, None)
        where = f"{where} AND endpoint = 'shadow'" if where else "WHERE endpoint = 'shadow'"
        sql = (
            f"SELECT day, SUM(cost) AS cost, SUM(unpriced) AS unpriced FROM requests {where} "
            "GROUP BY day ORDER BY day"
        )
        return self._fetch(sql, params)

    def query_attempts(self, request_id: str) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM attempts WHERE request_id = {self._MARK} ORDER BY seq"
        return [self._decode(row) for row in self._fetch(sql, [request_id])]

    def aggregate(
        self, by: str, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        if by not in GROUPS:
            raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUP_BY)}")
        key, source = GROUPS[by]
        where, params = self._time_filter("r.ts", since, until)
        sql = f"SELECT {key} AS key, {self._SUMS} FROM {source} {where} GROUP BY 1 ORDER BY 1"
        rows = self._fetch(sql, params)
        return [{k: (v or 0) if k != "key" else v for k, v in row.items()} for row in rows]

    def technique_savings(
        self, since: float | None = None, until: float | None = None
    ) -> dict[str, float]:
        """Net savings each technique booked, summed over the requests in scope."""
        where, params = self._time_filter("r.ts", since, until)
        sql = (
            f"SELECT s.key AS technique, {self._SAVED} AS saved "
            f"FROM {self._SAVINGS} {where} GROUP BY 1 ORDER BY 1"
        )
        return {row["technique"]: row["saved"] for row in self._fetch(sql, params)}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            self._writer.close()
        with self._read_lock:
            self._reader.close()
