"""The budget-use section of the dashboard: shown only when the runtime has budgets.

The hook: a runtime with budgets gives itself an async ``budget_usage()`` returning one
:class:`~thrifty.governance.budgets.base.BucketUsage` per configured budget in its current window
(it knows the configured buckets; its store's ``usage`` reads them). Without that method
the dashboard has no budget section at all. Nothing here reserves, settles or decides.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from thrifty.governance.budgets.base import BucketUsage
from thrifty.governance.budgets.redis import StoreUnavailable

log = logging.getLogger(__name__)


async def budget_usage(runtime: Any) -> list[BucketUsage] | None:
    """The runtime's budget use now, or None when it has no budgets."""
    source = getattr(runtime, "budget_usage", None)
    if source is None:
        return None
    return list(await source())


async def budget_section(runtime: Any) -> str | None:
    """The budget section's HTML, None without budgets; a note when the store is down.

    A shared budget store (Redis) can be unreachable; the page must still show the
    ledger, which does not depend on it.
    """
    try:
        usages = await budget_usage(runtime)
    except StoreUnavailable:
        log.warning("dashboard: budget use unavailable (budget store down)")
        return _section(
            "<tr><td colspan=8>budget use is unavailable: the budget store cannot be "
            "reached</td></tr>"
        )
    return None if usages is None else render_budget_section(usages)


def render_budget_section(usages: Sequence[BucketUsage]) -> str:
    """An HTML table of budget use; each row's bar is spent (solid) plus reserved."""
    rows = []
    for u in usages:
        b = u.bucket
        used = (u.spent_usd + u.reserved_usd) / b.limit_usd if b.limit_usd > 0 else 1.0
        resets = (
            "never"
            if b.resets_at is None
            else datetime.fromtimestamp(b.resets_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        )
        level = "over" if used >= 1 else "high" if used >= 0.8 else "ok"
        rows.append(
            f"<tr><td>{escape(b.scope)}</td><td>{escape(b.period)}</td>"
            f"<td>{escape(b.window)}</td><td class=num>${b.limit_usd:,.4f}</td>"
            f"<td class=num>${u.spent_usd:,.4f}</td><td class=num>${u.reserved_usd:,.4f}</td>"
            f"<td class=num><meter class={level} min=0 max=1 value={min(used, 1):.4f}></meter> "
            f"{used * 100:.1f}%</td><td>{resets}</td></tr>"
        )
    return _section("".join(rows) or "<tr><td colspan=8>no budgets configured</td></tr>")


def _section(body: str) -> str:
    return (
        "<section id=budgets><h2>Budget use</h2><table class=data><thead><tr>"
        "<th>scope</th><th>period</th><th>window</th><th>limit</th><th>spent</th>"
        "<th>reserved</th><th>used</th><th>resets</th></tr></thead>"
        f"<tbody>{body}</tbody></table></section>"
    )
