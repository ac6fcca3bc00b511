"""The budget-use section of the dashboard: shown only when the runtime has budgets.

The hook: a runtime with budgets gives itself an async ``budget_usage()`` returning one
:class:`~thrifty.budgets.store.BucketUsage` per configured budget in its current window
(it knows the configured buckets; its store's ``usage`` reads them). Without that method
the dashboard has no budget section at all. Nothing here reserves, settles or decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from thrifty.budgets.store import BucketUsage


async def budget_usage(runtime: Any) -> list[BucketUsage] | None:
    """The runtime's budget use now, or None when it has no budgets."""
    source = getattr(runtime, "budget_usage", None)
    if source is None:
        return None
    return list(await source())


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
    body = "".join(rows) or "<tr><td colspan=8>no budgets configured</td></tr>"
    return (
        "<section id=budgets><h2>Budget use</h2><table class=data><thead><tr>"
        "<th>scope</th><th>period</th><th>window</th><th>limit</th><th>spent</th>"
        "<th>reserved</th><th>used</th><th>resets</th></tr></thead>"
        f"<tbody>{body}</tbody></table></section>"
    )
