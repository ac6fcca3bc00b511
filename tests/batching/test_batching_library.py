"""``Thrifty.batch()``: packed calls to the real test upstream, repaired when it slips."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from tests.conftest import ServerThread, base_config, upstream_stats

from thrifty import AsyncThrifty, Thrifty
from thrifty.ledger.stores.sqlite import SqliteLedgerStore
from thrifty.upstream.app import UpstreamOptions, build_upstream_app

SYSTEM = "You are a concise assistant. Answer in one sentence."
QUESTIONS = [f"Question {i}: what is {i} times {i + 1}?" for i in range(7)]


def expected_answers(upstream_url: str, questions: list[str], model: str) -> list[str]:
    """What the upstream answers each question asked alone (its answers are deterministic)."""
    with openai.OpenAI(base_url=f"{upstream_url}/v1", api_key="x") as direct:
        return [
            direct.chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
            )
            .choices[0]
            .message.content
            or ""
            for q in questions
        ]


def rows(path: Path) -> list[dict]:
    store = SqliteLedgerStore(path)
    try:
        return store.query_requests()
    finally:
        store.close()


def test_batch_packs_into_one_call_and_books_one_row_per_question(
    upstream: ServerThread, tmp_path: Path
) -> None:
    expected = expected_answers(upstream.url, QUESTIONS, "gpt-4o")
    before = upstream_stats(upstream)["by_model"].get("gpt-4o", 0)
    ledger = tmp_path / "ledger.db"
    with Thrifty(config=base_config(upstream.url), ledger_path=str(ledger)) as client:
        answers = client.batch(QUESTIONS, model="gpt-4o", system=SYSTEM)
    assert [a.text for a in answers] == expected
    assert {a.mode for a in answers} == {"packed"}
    assert upstream_stats(upstream)["by_model"]["gpt-4o"] - before == 1
    booked = {r["request_id"]: r for r in rows(ledger)}
    assert set(booked) == {a.request_id for a in answers}
    batch_ids = {r["techniques"]["batch"]["id"] for r in booked.values()}
    assert len(batch_ids) == 1
    for answer in answers:
        row = booked[answer.request_id]
        assert row["cost"] == pytest.approx(answer.cost) and row["cost"] > 0
        assert "batching" in row["savings"]
        assert answer.completion is not None and answer.completion.usage is not None
        assert answer.completion.usage.prompt_tokens < 60  # a share, not the whole prompt


@pytest.mark.parametrize(
    ("fault", "reasked"),
    [("drop;item=3", {2}), ("swap;item=2", {1, 2}), ("malform", set(range(7)))],
)
def test_missing_swapped_or_malformed_items_are_reasked(
    tmp_path: Path, fault: str, reasked: set[int]
) -> None:
    with ServerThread(build_upstream_app(UpstreamOptions(model_faults={"gpt-4o": fault}))) as up:
        expected = expected_answers(up.url, QUESTIONS, "gpt-4o")
        with Thrifty(config=base_config(up.url), ledger_path=str(tmp_path / "l.db")) as client:
            answers = client.batch(QUESTIONS, model="gpt-4o", system=SYSTEM)
        calls = upstream_stats(up)["by_model"]["gpt-4o"] - len(QUESTIONS)
    assert [a.text for a in answers] == expected, "every caller gets its own answer"
    assert {i for i, a in enumerate(answers) if a.mode == "reasked"} == reasked
    assert calls == 1 + len(reasked)


def test_batch_splits_at_the_models_output_limit(upstream: ServerThread, tmp_path: Path) -> None:
    config = base_config(upstream.url)
    config["models"]["small-out"] = {"provider": "up", "model": "gpt-4o-mini",
                                     "price": {"input": 1, "output": 2},
                                     "max_output_tokens": 200}  # fmt: skip
    before = upstream_stats(upstream)["by_model"].get("gpt-4o-mini", 0)
    with Thrifty(config=config, ledger_path=str(tmp_path / "l.db")) as client:
        answers = client.batch(QUESTIONS[:6], model="small-out", max_tokens=80)
    # 80 + 8 label tokens per answer: two fit under 200, so 6 questions take 3 calls.
    assert upstream_stats(upstream)["by_model"]["gpt-4o-mini"] - before == 3
    assert len({a.completion.id for a in answers if a.completion}) == 6
    assert all(a.mode == "packed" for a in answers)


def test_async_batch_and_bad_input(upstream: ServerThread, tmp_path: Path) -> None:
    import asyncio

    async def main() -> list:
        async with AsyncThrifty(config=base_config(upstream.url),
                                ledger_path=str(tmp_path / "l.db")) as client:  # fmt: skip
            with pytest.raises(openai.BadRequestError):
                await client.batch("not a list", model="gpt-4o")  # type: ignore[arg-type]
            with pytest.raises(openai.NotFoundError):
                await client.batch(["q"], model="no-such-model")
            return await client.batch(["short?", "x " * 600], model="gpt-4o-mini")

    answers = asyncio.run(main())
    # The long question is never packed, which leaves the short one alone too.
    assert [a.mode for a in answers] == ["alone", "alone"]
    assert all(a.text for a in answers)
