"""One way to reach PostgreSQL for every store that lives there (ledger, virtual keys).

psycopg is an optional extra (``thrifty[postgres]``): importing it here, on first use,
turns a missing install into an error that says what to install.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INSTALL_HINT", "connect", "psycopg_module"]

INSTALL_HINT = "PostgreSQL stores need the postgres extra: pip install 'thrifty[postgres]'"


def psycopg_module() -> Any:
    """The ``psycopg`` module, or an ImportError that names the extra to install."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(INSTALL_HINT) from exc
    return psycopg


def connect(dsn: str, connect_timeout_s: float) -> Any:
    """An autocommit connection returning rows as dicts."""
    psycopg = psycopg_module()
    from psycopg.rows import dict_row

    return psycopg.connect(
        dsn, autocommit=True, row_factory=dict_row,
        connect_timeout=max(1, int(connect_timeout_s)),
    )  # fmt: skip
