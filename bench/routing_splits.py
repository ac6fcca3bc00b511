"""The learned router on other splits: does landing on the target hold beyond one halving?

``bench.routing_learned`` reports one split (the demo's, by id hash). A method that
carries over to unseen data must land near the target on every split, not on one, so
this bench halves each set again by a seeded hash of the id, tunes on half A
(`thrifty tune`, tradeoff, target 0.95, text only: no tags, no prior), replays half B,
then swaps the halves. It reports, per split, B's quality retained and savings beside
random routing at the same quality (the reference mixed with the cheaper model that
keeps the most), and the spread over splits. Writes
``bench/results/<date>-routing-splits.{md,json}``. Usage::

    python -m bench.routing_splits [--sets mmlu arena] [--seeds 1 2 3] [--encoder static]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.reporting import result_stem, write_results
from bench.routing_learned import MIXTRAL, MMLU, STRONG, TARGET, base_raw, run_set
from thrifty.logs import configure_logging
from thrifty.recordings.dataset import ReplayRecord, bundled_dataset, load_dataset
from thrifty.replay.search import deep_merge
from thrifty.routing.encoders import ENCODERS


def seeded_halves(
    records: list[ReplayRecord], seed: int
) -> tuple[list[ReplayRecord], list[ReplayRecord]]:
    """Two halves by a hash of (seed, id): a split other than the demo's for seed ≥ 1."""
    a: list[ReplayRecord] = []
    b: list[ReplayRecord] = []
    for record in records:
        digest = hashlib.sha256(f"{seed}:{record.id}".encode()).digest()
        (a if digest[0] % 2 == 0 else b).append(record)
    return a, b


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    quality = [r["B_quality_retained"] for r in runs]
    gain = [r["B_savings_pct"] - r["B_random_savings_at_equal_quality"] for r in runs]
    return {
        "splits": len(runs),
        "quality_min": min(quality),
        "quality_max": max(quality),
        "within_0.01": sum(1 for q in quality if abs(q - TARGET) <= 0.01),
        "below_target": sum(1 for q in quality if q < TARGET),
        "savings_mean": round(statistics.fmean(r["B_savings_pct"] for r in runs), 2),
        "gain_over_random_mean": round(statistics.fmean(gain), 2),
        "gain_over_random_min": round(min(gain), 2),
    }


def collected(runs: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted({r["set"] for r in runs})
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": runs,
        "summary": {n: summary([r for r in runs if r["set"] == n]) for n in names},
    }


def write(result: dict[str, Any], stem: str = "routing-splits") -> Path:
    lines = [
        f"# Learned routing on other splits ({result['date']})",
        "",
        "Each set halved again by a seeded hash of the id (seed ≥ 1; the demo's split is "
        "`bench.routing_learned`), tuned on A (`thrifty tune`, tradeoff, target "
        f"{TARGET}, text only, encoder `{result['runs'][0]['encoder']}`), replayed on B, then A "
        "and B swapped. Random: the reference "
        "mixed with the cheaper model that keeps the most quality, at B's quality. "
        "`python -m bench.routing_splits`.",
        "",
        "| set | seed | tuned on | chosen | B savings | B quality | B − target "
        "| random savings at equal quality | gain over random | AUC (B) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        gap = r["B_quality_retained"] - TARGET
        lines.append(
            f"| {r['set']} | {r['seed']} | {r['tuned_on']} | {r['chosen']} "
            f"| {r['B_savings_pct']:.1f}% | {r['B_quality_retained']:.3f} "
            f"| {gap:+.3f}{' **below**' if gap < 0 else ''} "
            f"| {r['B_random_savings_at_equal_quality']:.1f}% "
            f"| {r['B_savings_pct'] - r['B_random_savings_at_equal_quality']:+.1f} "
            f"| {r['B_auc_as_good']} |"
        )
    lines += ["", "| set | splits | B quality min–max | within ±0.01 of target | below target "
              "| mean savings | mean gain over random | least gain |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, s in result["summary"].items():
        lines.append(
            f"| {name} | {s['splits']} | {s['quality_min']:.3f}–{s['quality_max']:.3f} "
            f"| {s['within_0.01']} | {s['below_target']} | {s['savings_mean']:.1f}% "
            f"| {s['gain_over_random_mean']:+.1f} | {s['gain_over_random_min']:+.1f} |"
        )
    return write_results(result_stem(stem), result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mmlu", type=Path, default=MMLU)
    parser.add_argument("--sets", nargs="+", default=["mmlu", "arena"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--encoder", default="none", choices=ENCODERS,
                        help="the predictor's sentence encoder (default: none)")  # fmt: skip
    parser.add_argument("--out", default="routing-splits", help="results file stem")
    args = parser.parse_args()
    configure_logging("error", "text")
    raw = base_raw()
    sets = {
        "arena": ("arena_bench_v1", lambda: load_dataset(bundled_dataset()), raw),
        "mmlu": ("routellm_mmlu", lambda: load_dataset(args.mmlu),
                 deep_merge(raw, {"routing": {"candidates": [STRONG, MIXTRAL]}})),
    }  # fmt: skip
    runs: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="thrifty-bench-splits-") as work:
        for key in [k for k in sets if k in args.sets]:
            name, load, config = sets[key]
            records = load()
            for seed in args.seeds:
                a, b = seeded_halves(records, seed)
                for tuned_on, halves in (("A", (a, b)), ("B", (b, a))):
                    print(f"{name} seed {seed}, tuned on {tuned_on} ...", file=sys.stderr)
                    path = Path(work) / f"{key}-{seed}-{tuned_on}"
                    run = run_set(name, records, config, False, path, args.encoder,
                                  halves=halves)  # fmt: skip
                    runs.append({**run, "seed": seed, "tuned_on": tuned_on})
                    result = collected(runs)
                    write(result, args.out)  # kept if cut short
    print(write(result, args.out).read_text() if result else "no runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
