"""Assemble the report object behind ``--json`` and the HTML page of replay and tune."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from thrifty.replay.simulator import RowOutcome
from thrifty.replay.summary import comparable


def waterfall(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Baseline → minus each cause's gross saving → plus overheads → actual."""
    bars: list[dict[str, Any]] = [{"label": "baseline", "value": summary["baseline_cost"]}]
    overhead = 0.0
    for name, row in summary["by_technique"].items():
        if row["gross_savings"]:
            bars.append({"label": name, "value": -row["gross_savings"]})
        overhead += row["overhead_cost"]
    if overhead:
        bars.append({"label": "overhead", "value": overhead})
    if abs(summary["unattributed_savings"]) > 1e-12:
        bars.append({"label": "unattributed", "value": -summary["unattributed_savings"]})
    bars.append({"label": "actual", "value": summary["actual_cost"]})
    return bars


def notes(summary: dict[str, Any]) -> list[str]:
    out = []
    if summary["missing_answers"]:
        out.append(
            f"{summary['missing_answers']} requests had no recorded answer for a model they "
            "needed; they are excluded from cost and quality (see missing_answer_details)."
        )
    if summary.get("refused"):
        budgets = ", ".join(f"{scope}: {n}" for scope, n in summary["refused_by_budget"].items())
        out.append(
            f"{summary['refused']} requests were refused by governance"
            + (f" (budgets: {budgets})" if budgets else "")
            + "; they are excluded from cost and quality."
        )
    if summary["unpriced"]:
        out.append(f"{summary['unpriced']} requests used a model with no known price.")
    replayed = summary.get("baseline_replayed_cost")
    if replayed is not None and abs(replayed - summary["baseline_cost"]) > 1e-9:
        out.append(
            f"Baseline ${summary['baseline_cost']:,.4f} is the ledger's: the served answers' "
            f"tokens at {summary['baseline_model']}'s prices, what the gateway books for this "
            f"traffic. {summary['baseline_model']}'s own recorded answers would cost "
            f"${replayed:,.4f} (savings against them "
            f"{summary.get('savings_pct_replayed', 0.0):.1f}%); see docs/ledger.md."
        )
    if abs(summary["unattributed_savings"]) > 1e-9:
        out.append("Unattributed: savings the ledger could not give a cause (a bug: report it).")
    return out


def build_report(
    title: str,
    summary: dict[str, Any],
    references: list[dict[str, Any]] | None = None,
    candidates: list[dict[str, Any]] | None = None,
    held_out: dict[str, Any] | None = None,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "title": title,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "summary": summary,
        "waterfall": waterfall(summary),
        "by_model": [{"model": m, **row} for m, row in summary["by_model"].items()],
        "by_technique": summary["by_technique"],
        "notes": notes(summary),
    }
    if references is not None:
        report["reference_points"] = references
    if candidates is not None:
        report["candidates"] = candidates
    if held_out is not None:
        report["held_out"] = held_out
        warning = below_target(held_out)
        if warning:
            report["notes"].insert(0, f"Warning: {warning}.")
    return report


def below_target(held_out: dict[str, Any]) -> str | None:
    """The warning when the held-out quality retained misses the target, else None."""
    quality, target = held_out.get("quality_retained"), held_out.get("target_quality")
    if quality is None or target is None or quality >= target:
        return None
    return (
        f"held-out quality retained {quality:.3f} is below the target {target}: on new traffic "
        "this configuration is expected to lose more quality than you asked for"
    )


def comparison_lines(references: Sequence[dict[str, Any]], base_cost: float) -> list[str]:
    """One line per reference point (random at equal cost, oracle, ...) as savings/quality."""
    lines = []
    for point in references:
        if point["label"] == "always-baseline":
            continue
        saving = 100 * (1 - point["cost"] / base_cost) if base_cost else 0.0
        kept = point["quality_retained"]
        label = point["label"] + (f" ({point['model']})" if point.get("model") else "")
        lines.append(
            f"  {label:<40} savings {saving:5.1f}%   quality retained "
            + ("-" if kept is None else f"{kept:.3f}")
        )
    return lines


def baseline_rows(baseline: Sequence[RowOutcome]) -> list[int]:
    return comparable(baseline, baseline)
