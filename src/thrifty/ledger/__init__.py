"""The cost ledger: one record per request and per model call, written off the hot path.

- :mod:`thrifty.ledger.record` — :class:`RequestRecord`, :class:`AttemptRecord`
- :mod:`thrifty.ledger.writer` — :class:`LedgerWriter`, batching writes on a thread
- :mod:`thrifty.ledger.stores` — :class:`LedgerStore` protocol, :class:`SqliteLedgerStore`
- :mod:`thrifty.ledger.reports` — :func:`build_report`, :func:`render_table`
"""

from __future__ import annotations

from thrifty.ledger.record import AttemptRecord, RequestRecord, ShadowAnswer, attempts_cost
from thrifty.ledger.reports import build_report, parse_since, render_table
from thrifty.ledger.stores import LedgerStore, SqliteLedgerStore
from thrifty.ledger.writer import LedgerWriter

__all__ = [
    "AttemptRecord",
    "LedgerStore",
    "LedgerWriter",
    "RequestRecord",
    "ShadowAnswer",
    "SqliteLedgerStore",
    "attempts_cost",
    "build_report",
    "parse_since",
    "render_table",
]
