"""Train the routing prior on the public graded sets, and write the shipped file.

The sets: ``arena_bench_v1`` (300 prompts, 15 GPT-4-judged models, shipped with Thrifty)
and ``routellm_mmlu`` (14,042 MMLU questions, GPT-4 Turbo and Mixtral right/wrong),
priced as in ``examples/arena.yaml``, reference gpt-4-1106-preview. Not used, ever:
RouteLLM's GSM8K and MT-Bench evaluation files, AlpacaEval's published results.

    python -m bench.routing_prior          # writes src/thrifty/routing/data/routing_prior.npz

``bench.routing_learned`` trains its own priors with :func:`public_sets` minus the half
it reports on (a figure on a held-out half never comes from a prior that saw it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path

from thrifty.cli.replay_common import read_raw_config
from thrifty.config import parse_config
from thrifty.logs import configure_logging
from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.registry import ModelRegistry
from thrifty.routing.prior import SHIPPED, GradedSet, train_prior

ROOT = Path(__file__).resolve().parents[1]
MMLU = Path("/work/shared/data/routellm_mmlu/mmlu.jsonl.gz")
REFERENCE = "gpt-4-1106-preview"


def arena_registry() -> ModelRegistry:
    raw = read_raw_config(ROOT / "examples" / "arena.yaml")
    raw = {k: v for k, v in raw.items() if k not in ("routing", "cascade", "cache")}
    return ModelRegistry.from_config(parse_config(raw, base_dir=ROOT / "examples"))


def public_sets(exclude: Collection[str] = (), mmlu: Path = MMLU) -> list[GradedSet]:
    """The public graded sets, without the records whose id is in ``exclude``."""
    registry = arena_registry()
    out = []
    for path in (bundled_dataset(), mmlu):
        records = [r for r in load_dataset(path) if r.id not in exclude]
        out.append(GradedSet(records, registry, REFERENCE))
    return out


def write_prior(
    path: Path, exclude: Collection[str] = (), say: Callable[[str], None] = print
) -> Path:
    started = time.perf_counter()
    prior = train_prior(public_sets(exclude), progress=say)
    out = prior.save(path)
    say(f"prior: {len(prior.train_keys)} prompts, {time.perf_counter() - started:.1f} s, "
        f"{out.stat().st_size / 1e6:.2f} MB -> {out}")  # fmt: skip
    return out


def main() -> int:
    configure_logging("error", "text")
    write_prior(SHIPPED, say=lambda m: print(m, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
