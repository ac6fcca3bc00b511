"""Routing and cascades on the shipped arena set: tune on one half, replay the other.

For each setup (rules-only routing, learned routing, cascade, both) and each quality
target (0.95, 0.90): ``tune`` on half A (k-fold inside it), then ``replay`` of half B
with the tuned config — numbers on rows the tuner never saw. Reference points on half B:
always-cheapest, random-at-equal-cost, oracle. Decision latency of the router (rules and
learned) per request, one core. Writes ``bench/results/<date>-routing.{md,json}``.

    python -m bench.routing [--targets 0.95 0.90]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.reporting import result_stem, write_results
from thrifty.cli.demo import split_halves
from thrifty.cli.replay_common import read_raw_config
from thrifty.cli.tune import place_learned_files
from thrifty.config import parse_config
from thrifty.logs import configure_logging
from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.replay.references import model_matrix, reference_points
from thrifty.replay.report import baseline_rows
from thrifty.replay.search import deep_merge
from thrifty.replay.simulator import replay, without_techniques
from thrifty.replay.summary import summarize, totals
from thrifty.replay.tuner import tune

ROOT = Path(__file__).resolve().parents[1]
CHEAP_TIER = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
SETUPS: dict[str, dict[str, Any]] = {
    "rules-only routing": {"routing": {"enabled": True, "strategy": "rules"}},
    "learned routing": {"routing": {"enabled": True, "strategy": "threshold"}},
    "cascade": {"cascade": {"enabled": True, "tiers": [
        {"model": CHEAP_TIER, "checks": ["heuristics", "verifier"]}, {"model": STRONG}]}},
    "routing + cascade": {
        "routing": {"enabled": True, "strategy": "threshold"},
        "cascade": {"enabled": True, "tiers": [
            {"model": CHEAP_TIER, "checks": ["heuristics", "verifier"]}, {"model": STRONG}]},
    },
}  # fmt: skip


def run_setup(
    raw: dict[str, Any], setup: dict[str, Any], target: float, halves: Any, workdir: Path
) -> dict[str, Any]:
    tune_half, test_half = halves
    candidate_raw = deep_merge(raw, setup)
    started = time.perf_counter()
    examples = ROOT / "examples"
    result = tune(tune_half, candidate_raw, target, base_dir=examples, workdir=workdir / "tune")
    tune_s = time.perf_counter() - started
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "tuned.yaml"
    tuned = deep_merge(
        candidate_raw,
        place_learned_files(result.chosen.candidate.patch, out, candidate_raw, examples),
    )
    out.write_text(yaml.safe_dump(tuned, sort_keys=False))
    config = parse_config(tuned, base_dir=workdir)
    baseline = replay(test_half, without_techniques(config, STRONG))
    summary = summarize(replay(test_half, config), baseline, STRONG)
    held_keys = ("savings_pct", "savings_pct_ci", "quality_retained", "quality_retained_ci")
    b_keys = ("requests", "compared_requests", "savings_pct", "savings_pct_replayed",
              "quality_retained", "actual_cost", "baseline_cost", "baseline_replayed_cost",
              "missing_answers")  # fmt: skip
    return {
        "chosen": result.chosen.candidate.label,
        "tune_seconds": round(tune_s, 1),
        "held_out_in_A": {k: result.held_out[k] for k in held_keys},
        "half_B": {k: summary[k] for k in b_keys},
        "by_technique_B": {
            t: round(v["net_savings"], 4)
            for t, v in summary["by_technique"].items()
            if v["net_savings"]
        },
        "config": config,
    }


def random_at_equal_cost(base: dict[str, Any], weak: dict[str, Any], cost: float) -> float | None:
    """Quality retained by a coin flip between the baseline and ``weak`` costing ``cost``."""
    if base["actual_cost"] <= weak["actual_cost"] or weak["quality_retained"] is None:
        return None
    p = (base["actual_cost"] - cost) / (base["actual_cost"] - weak["actual_cost"])
    p = min(1.0, max(0.0, p))
    return (1 - p) + p * weak["quality_retained"]


def decision_latency(
    config_raw: dict[str, Any], workdir: Path, prompts: list[str]
) -> dict[str, float]:
    from thrifty.registry import ModelRegistry
    from thrifty.routing.build import build_routing

    out = {}
    for name in ("rules-only routing", "learned routing"):
        tuned_path = workdir / name.replace(" ", "-") / "0.95" / "tuned.yaml"
        config = parse_config(
            read_raw_config(tuned_path)
            if tuned_path.exists()
            else deep_merge(config_raw, SETUPS[name]),
            base_dir=tuned_path.parent,
        )
        registry = ModelRegistry.from_config(config)
        stage = build_routing(
            config.routing, registry, config.baseline_model or config.default_model
        )
        router = stage._router  # the decision alone, without the call it leads to
        for prompt in prompts[:20]:
            router.decide({"messages": [{"role": "user", "content": prompt}]})  # warm-up
        times = []
        for prompt in prompts:
            started = time.perf_counter()
            router.decide({"messages": [{"role": "user", "content": prompt}]})
            times.append((time.perf_counter() - started) * 1000)
        out[name] = round(statistics.median(times), 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=float, nargs="+", default=[0.95, 0.90])
    args = parser.parse_args()
    configure_logging("error", "text")
    records = load_dataset(bundled_dataset())
    halves = split_halves(records)
    raw = read_raw_config(ROOT / "examples" / "arena.yaml")
    # the setups below replace the example's tuned technique sections entirely
    raw = {k: v for k, v in raw.items() if k not in ("routing", "cascade")}
    workroot = Path(tempfile.mkdtemp(prefix="thrifty-bench-routing-"))
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "setups": {},
    }
    for name, setup in SETUPS.items():
        for target in args.targets:
            print(f"{name} @ {target} ...", file=sys.stderr)
            outcome = run_setup(
                raw, setup, target, halves, workroot / name.replace(" ", "-") / str(target)
            )
            outcome.pop("config")
            results["setups"][f"{name} @ {target}"] = outcome
    base_config = parse_config(raw, base_dir=ROOT / "examples")
    baseline = replay(halves[1], without_techniques(base_config, STRONG))
    matrix = model_matrix(halves[1], base_config)
    rows = baseline_rows(baseline)
    results["references_B"] = reference_points(matrix, baseline, rows, None)
    base_totals = totals(baseline, baseline, rows)
    weak = {m: totals(matrix[m], baseline, [i for i in rows if matrix[m][i].ok]) for m in matrix}
    cheapest = min(weak, key=lambda m: weak[m]["actual_cost"])
    for outcome in results["setups"].values():
        # against the replayed baseline (the strong model's own answers), as the references
        cost = base_totals["actual_cost"] * (1 - outcome["half_B"]["savings_pct_replayed"] / 100)
        outcome["random_at_equal_cost_B"] = {
            f"{STRONG}+{model}": random_at_equal_cost(base_totals, weak[model], cost)
            for model in (CHEAP_TIER, cheapest)
        }
    prompts = [r.messages[-1]["content"] for r in halves[1]]
    results["decision_ms_median"] = decision_latency(raw, workroot, prompts)
    write(results)
    return 0


def write(results: dict[str, Any]) -> Path:
    stem = result_stem("routing")
    lines = [
        f"# Routing and cascades on arena_bench_v1 ({results['date']})", "",
        "Tuned on half A (k-fold estimate inside A), replayed on half B (unseen by the tuner).",
        "Baseline: every request to gpt-4-1106-preview. Quality: recorded GPT-4 grades.", "",
        "| setup @ target | chosen | A: held-out savings / quality | B: savings "
        "| B: quality retained | B: random at equal cost (gpt-4 + Mixtral) |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, r in results["setups"].items():
        a, b = r["held_out_in_A"], r["half_B"]
        mix = r["random_at_equal_cost_B"][f"{STRONG}+{CHEAP_TIER}"]
        held = f"{a['savings_pct']:.1f}% / {(a['quality_retained'] or 0):.3f}"
        lines.append(
            f"| {name} | {r['chosen']} | {held} | {b['savings_pct']:.1f}% "
            f"| {(b['quality_retained'] or 0):.3f} | {(mix or 0):.3f} |"
        )
    lines += ["", "Reference points on half B (cost, quality retained):", ""]
    base_cost = next(p["cost"] for p in results["references_B"] if p["label"] == "always-baseline")
    for point in results["references_B"]:
        saving = 100 * (1 - point["cost"] / base_cost) if base_cost else 0
        retained = point["quality_retained"] or 0
        lines.append(f"* {point['label']}: savings {saving:.1f}%, quality retained {retained:.3f}")
    decision = results["decision_ms_median"]
    lines += ["", f"Router decision time, median ms per request (one process): {decision}", ""]
    return write_results(stem, results, lines)
    sys.stdout.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
