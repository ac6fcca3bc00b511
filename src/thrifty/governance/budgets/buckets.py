"""Which budget buckets a request counts against, and their windows (UTC).

A request counts against its key's budgets (from the key and from config
``key:<id>`` entries), its team's (``team:<name>``) and each of its tags'
(``tag:<name>=<value>``). Tags are the key's own tags merged with the request's
(``x-thrifty-tags``, ``metadata``); the key's win on a clash, so a caller cannot
rename its key's tag away. The team is the key's; a key without one takes the request's
``team`` tag. A request can add tags (and a team), and with them budgets, to itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

from thrifty.governance.budgets.base import BudgetBucket, Period
from thrifty.governance.config import BudgetConfig
from thrifty.governance.keys.identity import Caller, tag_label

__all__ = ["buckets_for", "scopes_for", "window"]


def window(period: Period, now: float) -> tuple[str, float | None]:
    """The window ``now`` falls in and the unix time it ends (None: never)."""
    if period == "lifetime":
        return "lifetime", None
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start.timestamp() + 86_400
        return start.strftime("%Y-%m-%d"), end
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.strftime("%Y-%m"), start.replace(year=year, month=month).timestamp()


def scopes_for(caller: Caller, team: str | None, tags: dict[str, str]) -> list[str]:
    scopes = []
    if caller.key_id:
        scopes.append(f"key:{caller.key_id}")
    if team:
        scopes.append(f"team:{team}")
    scopes += [f"tag:{tag_label(name, value)}" for name, value in tags.items()]
    return scopes


def buckets_for(
    caller: Caller,
    team: str | None,
    tags: dict[str, str],
    configured: list[BudgetConfig],
    now: float,
) -> tuple[BudgetBucket, ...]:
    """Every bucket the request must fit in: config budgets on its scopes, the key's own."""
    scopes = set(scopes_for(caller, team, tags))
    limits: list[tuple[str, Period, float]] = [
        (b.scope, b.period, b.limit_usd) for b in configured if b.scope in scopes
    ]
    if caller.key_id:
        limits += [(f"key:{caller.key_id}", b.period, b.limit_usd) for b in caller.budgets]
    lowest: dict[tuple[str, Period], float] = {}
    for scope, period, limit in limits:  # one bucket per scope and period: the lower limit
        lowest[(scope, period)] = min(limit, lowest.get((scope, period), limit))
    buckets = []
    for (scope, period), limit in lowest.items():
        name, resets_at = window(period, now)
        buckets.append(BudgetBucket(scope, period, name, limit, resets_at))
    return tuple(buckets)
