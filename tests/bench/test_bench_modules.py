"""Every benchmark the README and bench/README.md name can at least be imported.

Two of them (``metrics_overhead``, ``dashboard_queries``) imported helpers that the
pass-through bench no longer had, and nothing noticed; running them is not a test (they
take minutes and measure the machine), importing them is.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MODULES = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_bench_module_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")


def test_stem_conversations_keeps_stem_questions_as_third_turns_without_tags() -> None:
    from bench.routing_learned import OPENING, stem_conversations

    from thrifty.recordings.dataset import ReplayRecord

    def record(subject: str) -> ReplayRecord:
        question = ({"role": "user", "content": f"A {subject} question"},)
        return ReplayRecord(f"mmlu-{subject}-0", question, {}, {"subject": subject}, {})

    shaped = stem_conversations([record("college_physics"), record("world_religions")])
    assert [r.id for r in shaped] == ["mmlu-college_physics-0"]
    question = {"role": "user", "content": "A college_physics question"}
    assert shaped[0].messages == (*OPENING, question)
    assert shaped[0].tags == {}


def test_landing_noise_centres_a_policy_on_the_target_among_routing_candidates() -> None:
    """The chance floor under landing (``bench.routing_splits``): the mix that retains
    exactly the target on the whole set lands below it on about half the random halves,
    and uses a cheaper model routing may pick (the pair's Mixtral, not gpt-3.5-turbo)."""
    from bench.routing_learned import MIXTRAL, STRONG, base_raw
    from bench.routing_splits import CASCADE, landing_noise

    from thrifty.recordings.dataset import bundled_dataset, load_dataset
    from thrifty.replay.search import deep_merge

    records = load_dataset(bundled_dataset())
    pair = deep_merge(base_raw(), {"routing": {"candidates": [STRONG, MIXTRAL]}, **CASCADE})
    noise = landing_noise(records, pair, draws=400)
    assert noise is not None and noise["model"] == MIXTRAL
    assert 0.1 < noise["share"] < 0.3 and noise["half_rows"] > 140
    assert 0.005 < noise["sd"] < 0.04
    assert 0.35 < noise["below_target"] < 0.65
    every = landing_noise(records, base_raw(), draws=400)
    assert every is not None and every["model"] != MIXTRAL  # a cheaper tier keeps more
