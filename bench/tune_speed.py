"""``thrifty tune`` on 10,000 MMLU prompts: this tree against another, back to back.

Each run is ``bench.routing_learned``'s scale child (``thrifty tune``'s work, tradeoff
routing, 5-fold estimate) in a fresh process; the two trees alternate (before, after,
before, after, ...) so both see the same machine load, and the ratio of their medians is
the figure to read (absolute seconds move with whatever else the shared machine runs).

    python -m bench.tune_speed --before /path/to/old/checkout [--rounds 2]

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


def one_run(tree: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    command = [sys.executable, "-m", "bench.routing_learned", "--scale-child", str(ROWS)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=tree, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_1min"] = round(os.getloadavg()[0], 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="the old checkout")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--label", default="", help="what the old checkout is (for the report)")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for name, tree in (("before", args.before), ("after", ROOT)):
            runs[name].append(one_run(tree))
            print(f"{name}: {runs[name][-1]}", file=sys.stderr)
    medians = {
        name: {k: statistics.median(r[k] for r in rs) for k in ("tune_seconds", "max_rss_mb")}
        for name, rs in runs.items()
    }
    after, before = medians["after"], medians["before"]
    results = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "before": args.label or str(args.before),
        "runs": runs,
        "medians": medians,
        "time_ratio": round(after["tune_seconds"] / before["tune_seconds"], 3),
        "rss_ratio": round(after["max_rss_mb"] / before["max_rss_mb"], 3),
    }
    stem = result_stem("tune-speed")
    lines = [
        f"# `thrifty tune` on {ROWS:,} MMLU prompts, before / after ({results['date']})", "",
        f"`python -m bench.tune_speed`; before = {results['before']}. Alternating fresh "
        "processes; the machine is shared (1-minute load average after each run shown).", "",
        "| tree | run | tune s | peak RSS MB | load |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for name, rs in runs.items():
        for i, r in enumerate(rs):
            lines.append(f"| {name} | {i + 1} | {r['tune_seconds']} | {r['max_rss_mb']} "
                         f"| {r['load_1min']} |")  # fmt: skip
    lines += ["", f"Median time after / before: **{results['time_ratio']}**; peak RSS "
              f"after / before: **{results['rss_ratio']}**."]  # fmt: skip
    write_results(stem, results, lines)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
