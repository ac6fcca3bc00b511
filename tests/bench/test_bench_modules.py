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
