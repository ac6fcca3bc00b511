"""The shadow-evaluation section of the dashboard: what ``thrifty shadow status`` shows
of the collected figures (shadowed requests, spend, per-model samples and grades).

Shown when the runtime shadows or the ledger holds shadow answers in range. The
projection (a ``tune`` on the collected requests, seconds of work) is not run on a page
load: the panel points to ``thrifty shadow status``.
"""

from __future__ import annotations

from html import escape
from typing import Any

from thrifty.ledger.shadow_summary import shadow_summary


def shadow_section(runtime: Any, store: Any, since: float | None) -> str | None:
    """The section's HTML, or None when there is nothing to show. Blocking: a thread."""
    summary = shadow_summary(store, since)
    if getattr(runtime, "shadow", None) is None and not summary["shadowed_requests"]:
        return None
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td class=num>{m['samples']:,}</td>"
        f"<td class=num>{m['errors']:,}</td><td class=num>{m['graded']:,}</td>"
        f"<td class=num>{_num(m['mean_quality'])}</td>"
        f"<td class=num>{_num(m['quality_vs_served'])}</td></tr>"
        for name, m in summary["models"].items()
    )
    return (
        "<section id=shadow><h2>Shadow evaluation</h2>"
        f"<p>{summary['shadowed_requests']:,} requests shadowed; evaluation cost "
        f"${summary['spend_usd']:,.4f} (today ${summary['spend_today_usd']:,.4f}). "
        "Projected savings at the target quality: <code>thrifty shadow status</code>.</p>"
        "<table class=data><thead><tr><th>candidate</th><th>answers</th><th>failed</th>"
        "<th>graded</th><th>mean quality</th><th>vs served</th></tr></thead>"
        f"<tbody>{rows or '<tr><td colspan=6>nothing shadowed yet</td></tr>'}</tbody>"
        "</table></section>"
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
