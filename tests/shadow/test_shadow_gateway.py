"""Shadow evaluation through the real gateway: the client's answer is untouched, the
candidates' answers are graded and stored, and the shadow is bounded and survives
failing candidates."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread
from tests.shadow.shadow_arena import BASELINE, CHEAP, arena_config, settle, shadows

from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.replay.importers.ledger import import_ledger
from thrifty.upstream.app import UpstreamOptions, build_upstream_app

RECORDS = [
    r for r in load_dataset(bundled_dataset()) if all(m in r.answers for m in [BASELINE, *CHEAP])
]


@pytest.fixture(scope="module")
def arena_upstream() -> Iterator[ServerThread]:
    options = UpstreamOptions.for_tests(
        dataset=bundled_dataset(), model_faults={"claude-instant-1": "500"}
    )
    server = ServerThread(build_upstream_app(options)).start()
    yield server
    server.stop()


def ask(gateway: Gateway, records: Any) -> list[Any]:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
    return [
        client.chat.completions.create(model=BASELINE, messages=list(r.messages)) for r in records
    ]


def test_candidates_are_graded_as_the_recording_grades_them(
    arena_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(arena_config(arena_upstream.url))
    records = RECORDS[:3]
    replies = ask(gateway, records)
    for reply, record in zip(replies, records, strict=True):
        assert reply.choices[0].message.content == record.answers[BASELINE].text
    rows = shadows(gateway)
    assert len(rows) == 3 * len(CHEAP)
    by_key = {(r["request_id"], r["model"]): r for r in rows}
    served = sorted(
        (r for r in gateway.requests() if r["endpoint"] == "chat.completions"),
        key=lambda r: r["ts"],
    )
    for row, record in zip(served, records, strict=True):
        request_id = row["request_id"]
        ok = by_key[(request_id, CHEAP[0])]
        assert ok["status"] == "ok" and ok["grader"] == "absolute"
        assert ok["quality"] == record.answers[CHEAP[0]].quality
        assert ok["served_quality"] == record.answers[BASELINE].quality
        failed = by_key[(request_id, "claude-instant-1")]  # the upstream answers it 500
        assert failed["status"] == "error" and "injected" in failed["error"]
    # the shadow's own ledger record: evaluation cost, attempts with purpose shadow
    shadow_rows = [r for r in gateway.requests() if r["endpoint"] == "shadow"]
    assert len(shadow_rows) == 3
    assert all(r["baseline_cost"] is None and r["cost"] > 0 for r in shadow_rows)
    purposes = {a["purpose"] for a in gateway.attempts(shadow_rows[0]["request_id"])}
    assert purposes == {"shadow"}
    assert all(r["savings"] == {} and r["cost"] == r["baseline_cost"] for r in served)
    # the ledger becomes a multi-model graded dataset
    dataset = import_ledger(gateway.ledger_path)
    assert len(dataset) == 3
    for imported, record in zip(dataset, records, strict=True):
        assert set(imported.answers) == {BASELINE, *CHEAP[:2]}  # the 500s are missing answers
        for model in (BASELINE, *CHEAP[:2]):
            assert imported.answers[model].quality == record.answers[model].quality
            assert imported.answers[model].text == record.answers[model].text


def test_pairwise_grading_counts_ties_as_not_worse(
    arena_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    gateway = start_gateway(
        arena_config(arena_upstream.url, grading="pairwise", candidates=CHEAP[:1])
    )
    records = RECORDS[:4]
    ask(gateway, records)
    rows = shadows(gateway)
    assert len(rows) == 4
    expected = sorted(
        1.0 if r.answers[CHEAP[0]].quality >= r.answers[BASELINE].quality else 0.0  # type: ignore[operator]
        for r in records
    )
    assert sorted(r["quality"] for r in rows) == expected
    assert all(r["served_quality"] == 1.0 and r["grader"] == "pairwise" for r in rows)


def test_shadowing_off_writes_nothing(
    arena_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    config = arena_config(arena_upstream.url)
    config["shadow"] = {"enabled": False}
    gateway = start_gateway(config)
    ask(gateway, RECORDS[:2])
    assert shadows(gateway) == []
    assert [r["endpoint"] for r in gateway.requests()] == ["chat.completions"] * 2
    assert gateway.server.server.config.app.state.runtime.shadow is None  # type: ignore[attr-defined]


def test_shadowing_stops_at_its_daily_budget(
    arena_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    budget = 0.40
    gateway = start_gateway(
        arena_config(arena_upstream.url, daily_budget_usd=budget, candidates=CHEAP[:1])
    )
    for record in RECORDS[:12]:
        ask(gateway, [record])
        settle(gateway)
    shadow_rows = [r for r in gateway.requests() if r["endpoint"] == "shadow"]
    runner = gateway.server.server.config.app.state.runtime.shadow  # type: ignore[attr-defined]
    assert 0 < len(shadow_rows) < 12
    assert runner.counts["over_budget"] == 12 - len(shadow_rows)
    assert sum(r["cost"] for r in shadow_rows) <= budget


def test_a_candidate_that_times_out_is_recorded_and_survived(
    start_gateway: Callable[[dict[str, Any]], Gateway],
) -> None:
    """The candidate stalls 5 s, the shadow gives up after 1 s; the client, whose answer
    comes first, waits for neither."""
    options = UpstreamOptions.for_tests(
        dataset=bundled_dataset(), model_faults={"gpt-3.5-turbo": "timeout;seconds=5"}
    )
    with ServerThread(build_upstream_app(options)) as upstream:
        gateway = start_gateway(arena_config(upstream.url, candidates=CHEAP[:2], timeout_s=1.0))
        ask(gateway, RECORDS[:1])  # warm up (tokenizers, connections)
        started = time.perf_counter()
        replies = ask(gateway, RECORDS[1:3])
        # each shadow takes ≥ 1 s (the stalled candidate); the two requests did not wait
        assert time.perf_counter() - started < 0.5
        assert all(r.choices[0].message.content for r in replies)
        rows = shadows(gateway)
        gateway.server.stop()
    status = {(r["model"], r["status"]) for r in rows}
    assert status == {(CHEAP[0], "ok"), ("gpt-3.5-turbo", "error")}
    assert all("timeout" in r["error"] for r in rows if r["status"] == "error")


def test_captured_bodies_and_shadow_answers_are_stored_redacted(
    arena_upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway]
) -> None:
    config = arena_config(arena_upstream.url, candidates=CHEAP[:1])
    config["ledger"] = {**config["ledger"], "redact": [r"(?i)\bthe\b"]}
    gateway = start_gateway(config)
    records = [r for r in RECORDS if " the " in r.answers[CHEAP[0]].text][:2]  # type: ignore[operator]
    replies = ask(gateway, records)
    assert [r.choices[0].message.content for r in replies] == [
        r.answers[BASELINE].text for r in records
    ]  # the client gets the original
    rows = shadows(gateway)
    assert rows and all(r["quality"] is not None for r in rows)  # graded on the original
    assert all(" the " not in r["answer"] and "[redacted]" in r["answer"] for r in rows)
    for imported in import_ledger(gateway.ledger_path):
        assert all(" the " not in (a.text or "") for a in imported.answers.values())
        assert " the " not in str(imported.messages)
