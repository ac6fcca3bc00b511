"""Governance is the pipeline's first stage, absent when off; stages declare their worst case."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from thrifty.config import parse_config
from thrifty.errors import RateLimited
from thrifty.governance.keys.identity import Caller
from thrifty.governance.stage import GovernanceStage
from thrifty.ledger.sink import CollectingSink
from thrifty.pipeline.context import CHAT, Context
from thrifty.pipeline.ledger_stage import LedgerStage
from thrifty.pipeline.worst_case import Bound, Spender, WorstCase
from thrifty.runtime import Runtime

PRICE = {"input": 10.0, "output": 30.0}  # USD per million tokens


def config(**extra: Any) -> Any:
    return parse_config(
        {
            "auth": {"enabled": False},
            "providers": {"p": {"base_url": "http://127.0.0.1:9/v1"}},
            "models": {"m": {"provider": "p", "price": PRICE, "max_output_tokens": 100}},
            "default_model": "m",
            **extra,
        },
        {},
    )


def runtime(**extra: Any) -> Runtime:
    """No HTTP providers: nothing here reaches dispatch."""
    return Runtime(config(**extra), providers={}, ledger=CollectingSink(), ephemeral=True)


def test_without_governance_the_stage_is_absent() -> None:
    rt = runtime()
    assert not any(isinstance(s, GovernanceStage) for s in rt.pipeline.stages)
    assert isinstance(rt.pipeline.stages[0], LedgerStage)
    asyncio.run(rt.aclose())


def test_with_budgets_it_is_first_and_refuses_before_the_ledger() -> None:
    rt = runtime(governance={"store": "memory",
                             "budgets": [{"scope": "team:t", "limit_usd": 0.0}]})  # fmt: skip
    first, second = rt.pipeline.stages[:2]
    assert isinstance(first, GovernanceStage) and isinstance(second, LedgerStage)
    caller = Caller(key_id="k", team="t")
    ctx = rt.new_context(CHAT, {"messages": [{"role": "user", "content": "hi"}]}, {}, caller)
    with pytest.raises(RateLimited) as refused:
        asyncio.run(rt.run(ctx, caller))
    assert refused.value.code == "budget_exceeded"
    assert refused.value.headers["x-thrifty-budget"] == "team:t"
    assert isinstance(rt.ledger, CollectingSink) and rt.ledger.records == []  # no row
    asyncio.run(rt.aclose())


class _SideCall(Spender):
    """A stage that may make one extra call of a fixed price."""

    def worst_case(self, ctx: Context, bound: Bound, models: set[str]) -> float:
        return 0.5


class _Widen(Spender):
    def answer_models(self, ctx: Context, models: set[str]) -> set[str]:
        return models | {"m2"}


def test_the_reservation_sums_what_the_stages_declare() -> None:
    models = {
        "m": {"provider": "p", "price": PRICE, "max_output_tokens": 100},
        "m2": {"provider": "p", "price": {"input": 1, "output": 300}},
    }
    rt = runtime(models=models)
    ctx = rt.new_context(CHAT, {"messages": [{"role": "user", "content": "hi"}]}, {})
    alone = WorstCase(rt.registry, [], 4096).estimate(ctx, priced=True)
    answer = (alone.prompt_tokens * PRICE["input"] + 100 * PRICE["output"]) / 1e6
    assert alone.cost_usd == pytest.approx(answer)
    with_side = WorstCase(rt.registry, [_SideCall(), object()], 4096).estimate(ctx, priced=True)
    assert with_side.cost_usd == pytest.approx(answer + 0.5)
    widened = WorstCase(rt.registry, [_Widen()], 4096)
    assert widened.candidate_models(ctx) == {"m", "m2"}
    dearer = (alone.prompt_tokens * 1 + 4096 * 300) / 1e6  # m2: no output limit known
    assert widened.estimate(ctx, priced=True).cost_usd == pytest.approx(dearer)
    asyncio.run(rt.aclose())
