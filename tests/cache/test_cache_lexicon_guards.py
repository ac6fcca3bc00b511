"""The lexicon guards (kinds, contrast) on the near-miss pairs we wrote and by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.cache.test_cache_gateway import ask, cache_config, sdk, upstream_calls
from tests.conftest import Gateway, ServerThread

from thrifty.cache.guards import DEFAULT_GUARDS, guard_verdict
from thrifty.cache.lexicon_guards import check_contrast, check_kinds, lexicon

PAIRS = Path(__file__).resolve().parents[2] / "bench" / "data" / "near_miss_pairs.jsonl"
# the design rows only: the report rows are what bench/semantic_cache.py reports
DESIGN = [
    r for r in map(json.loads, PAIRS.read_text("utf-8").splitlines()) if r["split"] == "design"
]


@pytest.mark.parametrize("kind", ["entity_lower", "operator", "comparative", "antonym"])
def test_design_near_misses_are_blocked_by_a_lexicon_guard(kind: str) -> None:
    rows = [r for r in DESIGN if r["kind"] == kind]
    assert rows
    for row in rows:
        verdict = guard_verdict(row["a"], row["b"])
        assert not verdict.ok, row


def test_design_paraphrases_pass_every_guard() -> None:
    for row in (r for r in DESIGN if r["same"]):
        assert guard_verdict(row["a"], row["b"]).ok, row


@pytest.mark.parametrize(
    ("a", "b", "failed"),
    [
        ("Can dogs eat grapes?", "Can cats eat grapes?", "kinds"),
        ("Calculate 12 times 13", "Calculate 12 plus 13", "contrast"),
        ("Should I avoid ibuprofen with alcohol?", "Should I take ibuprofen with alcohol?",
         "contrast"),
        ("what is the capital of france", "what is the capital of germany", "kinds"),
        ("Can puppies eat grapes?", "Can kittens eat grapes?", "kinds"),  # plurals
        ("what is 12*13", "what is 12+13", "contrast"),  # symbols between numbers
        ("Is it safe to fly now?", "Is it unsafe to fly now?", "contrast"),  # a prefix
        ("Is it possible?", "Is it impossible?", "contrast"),
        ("How do I import a module?", "How do I port a module?", None),  # not a prefix
        ("What is 12 times 13?", "Multiply 12 by 13", None),  # one class, two words
        ("Is it safe or dangerous?", "Is it safe?", None),  # one side only adds a class
        ("How do I divide the dataset?", "How do I split the dataset plus labels?", None),
        ("Can dogs eat grapes?", "Are grapes safe for dogs?", None),
        ("Is soccer popular in Japan?", "Is football popular in Japan?", None),  # synonyms
        ("", "", None),
    ],
)  # fmt: skip
def test_hand_examples(a: str, b: str, failed: str | None) -> None:
    assert guard_verdict(a, b).failed == failed


def test_each_guard_says_what_differs() -> None:
    assert check_kinds("Can dogs eat grapes?", "Can cats eat grapes?") == (
        "animal: ['dog'] vs ['cat']"
    )
    assert check_contrast("Sort ascending", "Sort descending") == (
        "sort: ['ascending'] vs ['descending']"
    )
    assert check_kinds("how to learn guitar", "how to learn guitar fast") is None


def test_the_lexicon_loads_and_the_guards_are_on_by_default() -> None:
    table = lexicon()
    assert len(table.kinds) > 500 and len(table.contrast) > 100
    assert {"kinds", "contrast"} <= set(DEFAULT_GUARDS)


OUTSIDE = [  # near misses an outside set found served before these guards existed
    ("Can cats eat grapes?", "Can dogs eat grapes?", "kinds"),
    ("Calculate 12 plus 13", "Calculate 12 times 13", "contrast"),
    ("Should I take ibuprofen with alcohol?", "Should I avoid ibuprofen with alcohol?",
     "contrast"),
]  # fmt: skip


def test_gateway_refuses_the_outside_near_misses(
    upstream: ServerThread, start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(cache_config(upstream.url, tmp_path, semantic={"enabled": True}))
    with sdk(gateway) as client:
        for stored, _, _ in OUTSIDE:
            ask(client, [{"role": "user", "content": stored}])
        before = upstream_calls(upstream)
        replies = [ask(client, [{"role": "user", "content": q}]) for _, q, _ in OUTSIDE]
        assert upstream_calls(upstream) == before + len(OUTSIDE), "every one went upstream"
    for reply, (_, _, guard) in zip(replies, OUTSIDE, strict=True):
        assert reply.headers["x-thrifty-cache"].split(";")[0] == "miss"
        row = gateway.row(reply.headers["x-thrifty-request-id"])
        assert row["techniques"]["cache"]["semantic"]["blocked_by"].startswith(guard), row
