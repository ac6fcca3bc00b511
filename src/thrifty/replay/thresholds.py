"""Replaying a family of cascade-threshold candidates at about one replay per tier.

``thrifty tune`` tries each cascade threshold (``cascade/search.py``) with every routing
variant: configurations equal but for the checked tiers' thresholds form a *family*.
When a row's outcome depends on that row alone (the conditions of ``decisions.py``, with
the cascade allowed: no governance, batching, compression nor semantic cache; the exact
cache only if no two requests are the same), a row's climb is the same under every
threshold up to where it stops, and it stops at the first tier (from where it starts)
whose score reaches that tier's threshold: at most one outcome per tier.

So the family member with the highest thresholds is replayed whole (every tier it tries
logs its score, and it tries at least as many tiers as any other member); for another
member, each row's accepted tier is predicted from those scores, and a row whose outcome
for that tier is already known (from an earlier replay of the family) reuses it; only the
others are replayed, through the real pipeline with that member's config. The log keeps
scores rounded to 3 places, so a score within :data:`AMBIGUOUS` of a threshold predicts
nothing: that row is replayed, as is any row whose log is not a plain climb (a failed
tier, an error, a missing answer). Outcomes equal the full replay's but for wall-clock
fields (``check_ms``, ``decision_ms``): ``tests/replay/test_tune_thresholds.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from thrifty.config.schema import ThriftyConfig
from thrifty.replay.simulator import TECHNIQUES, Replayer, RowOutcome

#: A logged score is ``round(score, 3)``: within 0.0005 of the true one (+ float slack).
AMBIGUOUS = 0.0006
OFF = ""  # the key of a row the cascade did not apply to (the same under any threshold)


def rows_independent(config: ThriftyConfig, distinct: bool, allowed: set[str]) -> bool:
    """Only the ``allowed`` techniques on (and the exact cache, when every request is
    ``distinct``: it cannot hit then), and no governance: each row's outcome then
    depends on that row alone."""
    others = [name for name in TECHNIQUES if name not in allowed | {"cache"}]
    if any(getattr(getattr(config, name), "enabled", False) for name in others):
        return False
    cache = config.cache
    if cache.enabled and (cache.semantic.enabled or not distinct):
        return False
    return config.governance == type(config.governance)()


def family_key(config: ThriftyConfig, distinct: bool) -> str | None:
    """What a family's members share (the config with the checked tiers' thresholds
    blanked), or None when ``config`` cannot be replayed as part of a family."""
    if not config.cascade.enabled or not rows_independent(config, distinct, {"routing", "cascade"}):
        return None
    models = [tier.model for tier in config.cascade.tiers]
    if len(set(models)) != len(models):
        return None  # an accepted model would not name its tier
    dumped = config.model_dump(mode="json")
    for tier in dumped["cascade"]["tiers"][:-1]:
        tier["threshold"] = None
    return json.dumps(dumped, sort_keys=True, default=str)


def thresholds(config: ThriftyConfig) -> tuple[float, ...]:
    """The checked tiers' thresholds (the last tier is always accepted)."""
    return tuple(tier.threshold for tier in config.cascade.tiers[:-1])


def _climb(outcome: RowOutcome, models: Sequence[str]) -> tuple[int, list[dict[str, Any]]] | None:
    """Where the row's climb started and its log, when it is a plain climb: an ok row,
    consecutive tiers, every one but the last rejected, the last accepted."""
    entry = outcome.techniques.get("cascade")
    if not outcome.ok or not isinstance(entry, dict):
        return None
    log = entry.get("tiers")
    if entry.get("start") not in models or not isinstance(log, list) or not log:
        return None
    start = models.index(entry["start"])
    if [e.get("model") for e in log] != list(models[start : start + len(log)]):
        return None
    if log[-1].get("accepted") is not True or any(e.get("accepted") is not False for e in log[:-1]):
        return None
    return start, log


def accepted(outcome: RowOutcome, models: Sequence[str]) -> str | None:
    """The tier a replayed row was answered by (:data:`OFF`: no cascade), None when its
    log is not a plain climb."""
    if outcome.ok and "cascade" not in outcome.techniques:
        return OFF
    climb = _climb(outcome, models)
    return None if climb is None else climb[1][-1]["model"]


def predicted(scored: RowOutcome, models: Sequence[str], limits: Sequence[float]) -> str | None:
    """The tier a row would be answered by under thresholds ``limits``, from its replay
    ``scored`` under thresholds at least as high on every tier; None when that cannot be
    told for sure (a score within :data:`AMBIGUOUS` of its threshold, a failed tier, a
    log that is not a plain climb)."""
    if scored.ok and "cascade" not in scored.techniques:
        return OFF
    climb = _climb(scored, models)
    if climb is None:
        return None
    start, log = climb
    last = len(models) - 1
    for index, entry in enumerate(log, start):
        if index == last:
            return models[index]
        score = entry.get("score")
        if not isinstance(score, int | float) or isinstance(score, bool):
            return None  # a tier that failed upstream has no score
        if abs(score - limits[index]) <= AMBIGUOUS:
            return None
        if score > limits[index]:
            return models[index]
    return None  # stopped at a tier whose score is below these limits: not a plain climb


def family_outcomes(replay: Replayer, configs: Sequence[ThriftyConfig]) -> list[list[RowOutcome]]:
    """Each config's row outcomes (configs of one family, by :func:`family_key`)."""
    models = [tier.model for tier in configs[0].cascade.tiers]
    limits = [thresholds(config) for config in configs]
    top = max(range(len(configs)), key=lambda i: sum(limits[i]))
    if any(any(a > b for a, b in zip(own, limits[top], strict=True)) for own in limits):
        return [replay(config) for config in configs]  # no member scores for all the others
    scored = replay(configs[top])
    memo: dict[tuple[int, str], RowOutcome] = {}

    def remember(row: int, outcome: RowOutcome) -> None:
        key = accepted(outcome, models)
        if key is not None:
            memo.setdefault((row, key), outcome)

    for row, outcome in enumerate(scored):
        remember(row, outcome)
    out: list[list[RowOutcome]] = []
    for number, config in enumerate(configs):
        if number == top:
            out.append(scored)
            continue
        rows: list[RowOutcome | None] = []
        todo = []
        for row, outcome in enumerate(scored):
            key = predicted(outcome, models, limits[number])
            known = memo.get((row, key)) if key is not None else None
            rows.append(known)
            if known is None:
                todo.append(row)
        for row, outcome in zip(todo, replay(config, todo) if todo else [], strict=True):
            rows[row] = outcome
            remember(row, outcome)
        filled = [outcome for outcome in rows if outcome is not None]
        assert len(filled) == len(rows)  # every row reused or replayed
        out.append(filled)
    return out
