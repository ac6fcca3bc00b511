"""``thrifty tune``'s speed: this tree against another, back to back.

Two sets: ``scale``, ``bench.routing_learned``'s scale child (10,000 MMLU prompts,
tradeoff routing, 5-fold estimate), and ``demo``, ``make demo``'s tune (the arena
example, routing × cascade candidates, on the 142-prompt tuning half of the shipped
arena set). Each run is a fresh process; the two trees alternate (before, after,
before, after, ...) so both see the same machine load, and the ratio of their medians is
the figure to read (absolute seconds move with whatever else the shared machine runs;
CPU seconds of the process move less).

    python -m bench.tune_speed --before /path/to/old/checkout [--rounds 2] [--sets demo scale]
        [--name tune-speed]

(the old checkout: a folder with its own ``src`` and ``bench``, e.g. ``git archive``)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.reporting import result_stem, write_results

ROOT = Path(__file__).resolve().parents[1]
ROWS = 10_000
SETS = ("demo", "scale")

# ``make demo``'s tune, run against the tree on PYTHONPATH (an old tree has no child of
# its own for it, so the code is passed with -c); prints one JSON line.
DEMO_CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
from thrifty.cli.demo import split_halves
from thrifty.cli.replay_common import read_raw_config
from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.replay.tuner import tune
half, _ = split_halves(load_dataset(bundled_dataset()))
raw = read_raw_config(Path("examples/arena.yaml"))
started, cpu = time.perf_counter(), time.process_time()
with tempfile.TemporaryDirectory() as workdir:
    result = tune(half, raw, 0.95, base_dir=Path("examples").resolve(), workdir=Path(workdir))
print(json.dumps({"rows": len(half), "tune_seconds": round(time.perf_counter() - started, 1),
                  "cpu_seconds": round(time.process_time() - cpu, 1),
                  "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "chosen": result.chosen.candidate.label,
                  "held_out_savings_pct": result.held_out["savings_pct"]}))
"""


def one_run(tree: Path, name: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    command = (
        [sys.executable, "-c", DEMO_CHILD]
        if name == "demo"
        else [sys.executable, "-m", "bench.routing_learned", "--scale-child", str(ROWS)]
    )
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=tree, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_1min"] = round(os.getloadavg()[0], 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="the old checkout")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--label", default="", help="what the old checkout is (for the report)")
    parser.add_argument(
        "--name", default="tune-speed", help="report stem: bench/results/<day>-<name>.{md,json}"
    )
    args = parser.parse_args()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        s: {"before": [], "after": []} for s in args.sets
    }
    for _ in range(args.rounds):
        for name in args.sets:
            for tree_name, tree in (("before", args.before), ("after", ROOT)):
                runs[name][tree_name].append(one_run(tree, name))
                print(f"{name} {tree_name}: {runs[name][tree_name][-1]}", file=sys.stderr)
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results: dict[str, Any] = {"date": date, "before": args.label or str(args.before)}
    lines = [
        f"# `thrifty tune`, before / after ({date})", "",
        f"`python -m bench.tune_speed`; before = {results['before']}. Alternating fresh "
        "processes; the machine is shared (1-minute load average after each run shown). "
        f"`demo`: `make demo`'s tune; `scale`: {ROWS:,} MMLU prompts.", "",
        "| set | tree | run | tune s | CPU s | peak RSS MB | load |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, by_tree in runs.items():
        every = [r for rs in by_tree.values() for r in rs]
        keys = [
            k for k in ("tune_seconds", "cpu_seconds", "max_rss_mb") if all(k in r for r in every)
        ]
        medians = {
            tree: {k: statistics.median(r[k] for r in rs) for k in keys}
            for tree, rs in by_tree.items()
        }
        ratios = {k: round(medians["after"][k] / medians["before"][k], 3) for k in keys}
        results[name] = {"runs": by_tree, "medians": medians, "ratios": ratios}
        for tree, rs in by_tree.items():
            for i, r in enumerate(rs):
                lines.append(f"| {name} | {tree} | {i + 1} | {r['tune_seconds']} "
                             f"| {r.get('cpu_seconds', '–')} | {r['max_rss_mb']} "
                             f"| {r['load_1min']} |")  # fmt: skip
    lines.append("")
    for name in runs:
        said = ", ".join(f"{k} **{v}**" for k, v in results[name]["ratios"].items())
        lines.append(f"* `{name}`: median after / before: {said}.")
    write_results(result_stem(args.name), results, lines)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
