"""The learned router on other splits: does landing on the target hold beyond one halving?

``bench.routing_learned`` reports one split (the demo's, by id hash). A method that
carries over to unseen data must land near the target on every split, not on one, so
this bench halves each set again by a seeded hash of the id, tunes on half A
(`thrifty tune`, tradeoff, target 0.95, text only: no tags, no prior), replays half B,
then swaps the halves. It reports, per split, B's quality retained and savings beside
random routing at the same quality (the reference mixed with the cheaper model that
keeps the most), and the spread over splits, beside the spread that chance alone gives
a policy exactly on the target on halves that size (``landing_noise``). ``arena-mixtral``
is arena_bench_v1 with RouteLLM's pair (gpt-4-1106 and Mixtral) as the only models: a
small judge-graded set of that shape. Writes
``bench/results/<date>-routing-splits.{md,json}``. Usage::

    python -m bench.routing_splits [--sets mmlu arena arena-mixtral] [--seeds 0 1 2 3] \
        [--encoder static] [--cascade]

``--seeds 0`` is the demo's own split; ``--cascade`` tunes routing together with the
arena example's cascade (its candidates are routing × cascade thresholds).
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

import numpy as np

from bench.reporting import result_stem, write_results
from bench.routing_learned import MIXTRAL, MMLU, ROOT, STRONG, TARGET, base_raw, run_set
from thrifty.cli.demo import split_halves
from thrifty.config import parse_config
from thrifty.logs import configure_logging
from thrifty.recordings.dataset import ReplayRecord, bundled_dataset, load_dataset
from thrifty.replay.references import model_matrix
from thrifty.replay.report import baseline_rows
from thrifty.replay.search import deep_merge
from thrifty.replay.simulator import replay, without_techniques
from thrifty.replay.summary import totals
from thrifty.routing.encoders import ENCODERS


def seeded_halves(
    records: list[ReplayRecord], seed: int
) -> tuple[list[ReplayRecord], list[ReplayRecord]]:
    """Two halves by a hash of (seed, id): a split other than the demo's for seed ≥ 1;
    seed 0 is the demo's own (``split_halves``)."""
    if seed == 0:
        return split_halves(records)
    a: list[ReplayRecord] = []
    b: list[ReplayRecord] = []
    for record in records:
        digest = hashlib.sha256(f"{seed}:{record.id}".encode()).digest()
        (a if digest[0] % 2 == 0 else b).append(record)
    return a, b


#: The arena example's cascade (``scripts/tune_arena_example.py``), for ``--cascade``.
CASCADE = {
    "cascade": {
        "enabled": True,
        "tiers": [{"model": MIXTRAL, "checks": ["heuristics", "verifier"]}, {"model": STRONG}],
    }
}
CASCADE_LABEL = "Mixtral checked by heuristics and the verifier, then gpt-4-1106"


def landing_noise(
    records: list[ReplayRecord], config_raw: dict[str, Any], draws: int = 2000
) -> dict[str, Any] | None:
    """How far from the target a policy that is exactly on it lands on a half, by chance.

    The policy: the reference mixed at share s with the cheaper model (of the routing
    candidates) that keeps the most quality, s set so the *whole* set retains exactly the
    target. Each draw takes a random half and a random share of its rows (the hashed
    share's role); the spread of the half's quality retained is the floor under any
    tuner's landing on halves that size."""
    plain = {k: v for k, v in config_raw.items() if k != "cascade"}  # routing's models
    config = parse_config(plain, base_dir=ROOT / "examples")
    baseline = replay(records, without_techniques(config, STRONG))
    rows = baseline_rows(baseline)
    matrix = model_matrix(records, config)
    base_cost = sum(baseline[i].cost for i in rows)
    best: tuple[float, str] | None = None
    allowed = set(config.routing.candidates) or set(matrix)  # the models routing may pick
    for model, outcomes in matrix.items():
        usable = [i for i in rows if outcomes[i].ok and outcomes[i].quality is not None]
        if model == STRONG or model not in allowed or len(usable) < len(rows) * 0.9:
            continue
        if sum(outcomes[i].cost for i in usable) >= base_cost:
            continue
        kept = totals(outcomes, baseline, usable)["quality_retained"]
        if kept is not None and kept < 1 and (best is None or kept > best[0]):
            best = (kept, model)
    if best is None:
        return None
    cheap = matrix[best[1]]
    both = [i for i in rows if cheap[i].ok and cheap[i].quality is not None]
    strong = np.array([baseline[i].quality or 0.0 for i in both])
    weak = np.array([cheap[i].quality or 0.0 for i in both])
    share = min(1.0, (1 - TARGET) * strong.sum() / max((strong - weak).sum(), 1e-12))
    rng = np.random.default_rng(0)
    landed = np.empty(draws)
    for d in range(draws):
        half = rng.permutation(len(both))[: len(both) // 2]
        routed = rng.random(len(half)) < share
        landed[d] = np.where(routed, weak[half], strong[half]).sum() / strong[half].sum()
    return {
        "model": best[1],
        "share": round(share, 3),
        "half_rows": len(both) // 2,
        "sd": round(float(landed.std()), 4),
        "within_0.01": round(float((np.abs(landed - TARGET) <= 0.01).mean()), 3),
        "below_target": round(float((landed < TARGET).mean()), 3),
    }


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


def collected(
    runs: list[dict[str, Any]], noise: dict[str, Any], cascade: bool = False
) -> dict[str, Any]:
    names = sorted({r["set"] for r in runs})
    return {
        "cascade": cascade,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": runs,
        "summary": {n: summary([r for r in runs if r["set"] == n]) for n in names},
        "landing_noise": {n: noise.get(n) for n in names},
    }


def write(result: dict[str, Any], stem: str = "routing-splits") -> Path:
    lines = [
        f"# Learned routing on other splits ({result['date']})",
        "",
        "Each set halved again by a seeded hash of the id (seed ≥ 1; seed 0 is the demo's "
        "split, `bench.routing_learned`'s), tuned on A (`thrifty tune`, tradeoff, target "
        f"{TARGET}, text only, encoder `{result['runs'][0]['encoder']}`"
        f"{', with the cascade ' + CASCADE_LABEL if result.get('cascade') else ''}), "
        "replayed on B, then A "
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
    lines += ["", "Landing by chance (`landing_noise`): the reference mixed with the cheaper "
              "model that keeps the most quality, at the share that retains exactly the "
              "target on the whole set, replayed on 2,000 random halves: how far a policy "
              "that is *on* the target lands from it on a half of that size.", "",
              "| set | cheaper model, share | half rows | SD of quality retained "
              "| within ±0.01 | below target |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, n in result["landing_noise"].items():
        if n is not None:
            lines.append(
                f"| {name} | {n['model']}, {n['share']:.2f} | {n['half_rows']} | {n['sd']:.4f} "
                f"| {100 * n['within_0.01']:.0f}% | {100 * n['below_target']:.0f}% |"
            )
    return write_results(result_stem(stem), result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mmlu", type=Path, default=MMLU)
    parser.add_argument("--sets", nargs="+", default=["mmlu", "arena", "arena-mixtral"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--encoder", default="none", choices=ENCODERS,
                        help="the predictor's sentence encoder (default: none)")  # fmt: skip
    parser.add_argument("--out", default="routing-splits", help="results file stem")
    parser.add_argument(
        "--cascade", action="store_true", help=f"tune with the example's cascade ({CASCADE_LABEL})"
    )
    args = parser.parse_args()
    configure_logging("error", "text")
    raw = base_raw()
    if args.cascade:
        raw = deep_merge(raw, CASCADE)
    pair = deep_merge(raw, {"routing": {"candidates": [STRONG, MIXTRAL]}})  # RouteLLM's
    sets = {
        "arena": ("arena_bench_v1", lambda: load_dataset(bundled_dataset()), raw),
        "arena-mixtral": ("arena_bench_v1, GPT-4 vs Mixtral",
                          lambda: load_dataset(bundled_dataset()), pair),
        "mmlu": ("routellm_mmlu", lambda: load_dataset(args.mmlu), pair),
    }  # fmt: skip
    runs: list[dict[str, Any]] = []
    noise: dict[str, Any] = {}
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="thrifty-bench-splits-") as work:
        for key in [k for k in sets if k in args.sets]:
            name, load, config = sets[key]
            records = load()
            noise[name] = landing_noise(records, config)
            for seed in args.seeds:
                a, b = seeded_halves(records, seed)
                for tuned_on, halves in (("A", (a, b)), ("B", (b, a))):
                    print(f"{name} seed {seed}, tuned on {tuned_on} ...", file=sys.stderr)
                    path = Path(work) / f"{key}-{seed}-{tuned_on}"
                    run = run_set(name, records, config, False, path, args.encoder,
                                  halves=halves)  # fmt: skip
                    runs.append({**run, "seed": seed, "tuned_on": tuned_on})
                    result = collected(runs, noise, args.cascade)
                    write(result, args.out)  # kept if cut short
    print(write(result, args.out).read_text() if result else "no runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
