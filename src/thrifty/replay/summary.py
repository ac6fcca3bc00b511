"""Turn replayed outcomes into the numbers ``thrifty replay`` reports.

Costs and quality compare like with like: a request counts only when both its actual
run and its baseline run got an answer; requests missing a recorded answer are counted
and listed, never silently dropped or answered by another model.

Two baselines, named (docs/ledger.md): ``baseline_cost`` is the ledger's — each request's
served tokens at the baseline model's prices, what the gateway will book for the same
traffic, split by cause; ``baseline_replayed_cost`` is what the baseline model's own
recorded answers cost (its answers may be longer or shorter). Savings percentages are
given against both; quality is always against the baseline model's own answers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from thrifty.ledger.reports import build_report
from thrifty.ledger.stores.base import LedgerStore
from thrifty.pipeline.attribution import CAUSES, OWN_PURPOSES, overhead_cause
from thrifty.replay.simulator import RowOutcome


def comparable(actual: Sequence[RowOutcome], baseline: Sequence[RowOutcome]) -> list[int]:
    """Indices of rows where both runs answered."""
    return [i for i, (a, b) in enumerate(zip(actual, baseline, strict=True)) if a.ok and b.ok]


def quality_pair(actual: RowOutcome, baseline: RowOutcome) -> tuple[float, float] | None:
    if actual.quality is None or baseline.quality is None:
        return None
    return actual.quality, baseline.quality


def ledger_baseline(outcome: RowOutcome) -> float:
    """The ledger's baseline of a replayed request; one without (unpriced) counts at its
    cost, as in ``thrifty report``."""
    return outcome.cost if outcome.baseline_cost is None else outcome.baseline_cost


def _pct_saved(actual: float, baseline: float) -> float:
    return 100.0 * (1 - actual / baseline) if baseline else 0.0


def totals(
    actual: Sequence[RowOutcome], baseline: Sequence[RowOutcome], rows: Sequence[int]
) -> dict[str, float | None]:
    """Cost and quality sums over ``rows`` (indices into both runs)."""
    actual_cost = sum(actual[i].cost for i in rows)
    baseline_cost = sum(ledger_baseline(actual[i]) for i in rows)
    replayed_cost = sum(baseline[i].cost for i in rows)
    pairs = [p for i in rows if (p := quality_pair(actual[i], baseline[i])) is not None]
    quality_actual = sum(a for a, _ in pairs) / len(pairs) if pairs else None
    quality_baseline = sum(b for _, b in pairs) / len(pairs) if pairs else None
    retained = (
        quality_actual / quality_baseline
        if quality_actual is not None and quality_baseline
        else None
    )
    return {
        "baseline_cost": baseline_cost,
        "baseline_replayed_cost": replayed_cost,
        "actual_cost": actual_cost,
        "savings_pct": _pct_saved(actual_cost, baseline_cost),
        "savings_pct_replayed": _pct_saved(actual_cost, replayed_cost),
        "quality_baseline": quality_baseline,
        "quality_actual": quality_actual,
        "quality_retained": retained,
        "quality_rows": len(pairs),
    }


def by_technique(actual: Sequence[RowOutcome], rows: Sequence[int]) -> dict[str, dict[str, float]]:
    """Gross savings, overhead and net savings per cause (net = gross − overhead).

    The net is what the ledger booked on each row (``pipeline/attribution.py``), so the
    causes add up to ``baseline_cost - actual_cost`` exactly; the overhead is the cost of
    each cause's own calls (a judge, a rejected tier, a verifier, a summary).
    """
    net = dict.fromkeys(CAUSES, 0.0)
    overhead = dict.fromkeys(CAUSES, 0.0)
    for i in rows:
        for cause, value in actual[i].savings.items():
            net[cause] = net.get(cause, 0.0) + value
        for cause, value in actual[i].overhead.items():
            overhead[cause] = overhead.get(cause, 0.0) + value
    return {
        cause: {
            "gross_savings": net[cause] + overhead.get(cause, 0.0),
            "overhead_cost": overhead.get(cause, 0.0),
            "net_savings": net[cause],
        }
        for cause in net
    }


def by_model(actual: Sequence[RowOutcome], rows: Sequence[int]) -> dict[str, dict[str, float]]:
    counts: Counter[str] = Counter()
    costs: defaultdict[str, float] = defaultdict(float)
    for i in rows:
        model = actual[i].model or "(none)"
        counts[model] += 1
        costs[model] += actual[i].cost
    n = max(1, len(rows))
    return {
        model: {"requests": counts[model], "share": counts[model] / n, "cost": costs[model]}
        for model, _ in counts.most_common()
    }


def refusals(actual: Sequence[RowOutcome]) -> dict[str, Any]:
    """How many requests governance refused, and how many each budget refused (by scope,
    with the period the error named, most first)."""
    refused = [a for a in actual if a.status == "refused"]
    budgets = Counter(a.budget for a in refused if a.budget)
    return {"refused": len(refused), "refused_by_budget": dict(budgets.most_common())}


def summarize(
    actual: Sequence[RowOutcome], baseline: Sequence[RowOutcome], baseline_model: str
) -> dict[str, Any]:
    """The ``thrifty replay --json`` object."""
    rows = comparable(actual, baseline)
    missing: Counter[str] = Counter()
    for a, b in zip(actual, baseline, strict=True):
        if a.status == "missing_answer":
            missing[f"actual:{a.error}"] += 1
        if b.status == "missing_answer":
            missing[f"baseline:{b.error}"] += 1
    techniques = by_technique(actual, rows)
    result = {
        "requests": len(actual),
        "compared_requests": len(rows),
        "baseline_model": baseline_model,
        **totals(actual, baseline, rows),
        "unpriced": sum(1 for a in actual if a.unpriced),
        "missing_answers": sum(
            1
            for a, b in zip(actual, baseline, strict=True)
            if "missing_answer" in (a.status, b.status)
        ),
        "missing_answer_details": dict(missing.most_common(20)),
        "errors": sum(1 for a in actual if a.status == "error"),
        **refusals(actual),
        "by_model": by_model(actual, rows),
        "by_technique": techniques,
    }
    attributed = sum(t["net_savings"] for t in techniques.values())
    # zero up to rounding: every dollar of the ledger's baseline - cost has a cause
    result["unattributed_savings"] = result["baseline_cost"] - result["actual_cost"] - attributed
    return result


def ledger_summary(store: LedgerStore, baseline_model: str) -> dict[str, Any]:
    """The :func:`summarize` object read from a gateway's ledger instead of a replay: the
    same totals, shares and causes ``thrifty report`` prints for that traffic (``thrifty
    demo`` renders its HTML report from it). Quality is not in a ledger: the caller fills
    the ``quality_*`` fields when it knows them."""
    report = build_report(store, by="model")
    t = report["totals"]
    net = {**dict.fromkeys(CAUSES, 0.0), **report["by_technique"]}
    overhead = dict.fromkeys(net, 0.0)
    for row in store.query_requests():
        for attempt in store.query_attempts(row["request_id"]):
            if attempt["purpose"] not in OWN_PURPOSES and attempt["cost"]:
                cause = overhead_cause(attempt["purpose"])
                overhead[cause] = overhead.get(cause, 0.0) + attempt["cost"]
    n = max(1, t["requests"])
    baseline = t["baseline_cost"] if t["baseline_cost"] is not None else t["cost"]
    return {
        "requests": t["requests"],
        "compared_requests": t["requests"],
        "baseline_model": baseline_model,
        "baseline_cost": baseline,
        "actual_cost": t["cost"],
        "savings_pct": _pct_saved(t["cost"], baseline),
        "quality_baseline": None,
        "quality_actual": None,
        "quality_retained": None,
        "quality_rows": 0,
        "unpriced": t["unpriced_requests"],
        "missing_answers": 0,
        "missing_answer_details": {},
        "errors": t["errors"],
        "refused": 0,
        "refused_by_budget": {},
        "by_model": {
            g["key"]: {"requests": g["requests"], "share": g["requests"] / n, "cost": g["cost"]}
            for g in report["groups"]
        },
        "by_technique": {
            cause: {
                "gross_savings": saved + overhead.get(cause, 0.0),
                "overhead_cost": overhead.get(cause, 0.0),
                "net_savings": saved,
            }
            for cause, saved in net.items()
        },
        "unattributed_savings": baseline - t["cost"] - sum(net.values()),
    }


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}"


def _pct(value: float | None, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value * scale:.1f}%"


def render_table(summary: dict[str, Any]) -> str:
    """A terminal report of :func:`summarize`'s output."""
    lines = [
        f"requests {summary['requests']} (compared {summary['compared_requests']}, "
        f"missing answers {summary['missing_answers']}, errors {summary['errors']}, "
        f"unpriced {summary['unpriced']})",
        f"baseline  {summary['baseline_model']}: {_money(summary['baseline_cost'])} "
        "(the served tokens at its prices, as the ledger books it)"
        f"   quality {summary['quality_baseline'] or 0:.3f}",
        f"          its own recorded answers: {_money(summary['baseline_replayed_cost'])} "
        f"(savings against it {_pct(summary['savings_pct_replayed'] / 100, 100)})",
        f"actual    {_money(summary['actual_cost'])}"
        f"   quality {summary['quality_actual'] or 0:.3f}",
        f"savings   {_pct(summary['savings_pct'] / 100, 100)}   quality retained "
        f"{_pct(summary['quality_retained'], 100)}",
    ]
    if summary.get("refused"):
        budgets = summary["refused_by_budget"].items()
        by_budget = ", ".join(f"{n} by {scope}" for scope, n in budgets)
        lines.append(
            f"refused   {summary['refused']} by governance"
            + (f" ({by_budget})" if by_budget else "")
            + "; they are excluded from cost and quality"
        )
    lines += [
        "",
        f"{'model':<40} {'requests':>8} {'share':>7} {'cost':>10}",
    ]
    for model, row in summary["by_model"].items():
        share = _pct(row["share"], 100)
        lines.append(f"{model:<40} {row['requests']:>8} {share:>7} {_money(row['cost']):>10}")
    lines += ["", f"{'cause':<14} {'gross':>10} {'overhead':>10} {'net':>10}"]
    for name, row in summary["by_technique"].items():
        lines.append(
            f"{name:<14} {_money(row['gross_savings']):>10} {_money(row['overhead_cost']):>10} "
            f"{_money(row['net_savings']):>10}"
        )
    lines.append(
        f"{'unattributed':<14} {'':>10} {'':>10} {_money(summary['unattributed_savings']):>10}"
    )
    return "\n".join(lines)
