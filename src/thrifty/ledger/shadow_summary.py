"""What shadow evaluation has collected, summed from the ledger (``thrifty shadow status``
and the dashboard's shadow panel read the same figures)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = ["ShadowReads", "shadow_summary"]


class ShadowReads(Protocol):
    def query_shadows(
        self, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]: ...

    def shadow_spend(self, since: float | None = None) -> list[dict[str, Any]]: ...


def shadow_summary(store: ShadowReads, since: float | None) -> dict[str, Any]:
    """Shadowed requests; per candidate model its samples, failures, graded answers, mean
    quality and quality relative to the served answers'; the shadow spend (in scope and
    today, UTC) and how many shadow records are partly unpriced."""
    models: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"samples": 0, "errors": 0, "graded": 0, "quality_sum": 0.0, "served_sum": 0.0}
    )
    requests = set()
    for row in store.query_shadows(since=since):
        requests.add(row["request_id"])
        entry = models[row["model"]]
        if row["status"] != "ok":
            entry["errors"] += 1
            continue
        entry["samples"] += 1
        if row["quality"] is not None and row["served_quality"] is not None:
            entry["graded"] += 1
            entry["quality_sum"] += row["quality"]
            entry["served_sum"] += row["served_quality"]
    per_model = {
        name: {
            "samples": e["samples"],
            "errors": e["errors"],
            "graded": e["graded"],
            "mean_quality": e["quality_sum"] / e["graded"] if e["graded"] else None,
            "quality_vs_served": e["quality_sum"] / e["served_sum"] if e["served_sum"] else None,
        }
        for name, e in sorted(models.items())
    }
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    spend = store.shadow_spend(since)
    return {
        "shadowed_requests": len(requests),
        "models": per_model,
        "spend_usd": sum(float(d["cost"] or 0) for d in spend),
        "spend_today_usd": sum(float(d["cost"] or 0) for d in spend if d["day"] == today),
        "unpriced_records": sum(int(d["unpriced"] or 0) for d in spend),
    }
