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
