"""The cascade verifier on held-out halves: AUC and how far its scores spread (issue #19).

Protocol: each set is split into halves by a hash of the id (``split_halves``, as the
routing benches). The verifier is fitted on half A only (``AnswerVerifier.fit``, as
``thrifty tune`` does; its L2 penalty chosen on A's cross-fitted log-loss) and scores
half B's answers. Label, as in the fit: the answer's recorded quality is within 0.12 of
the reference model's (gpt-4-1106-preview). Reported: AUC on B and the score quantiles
p10/p50/p90 on B (a threshold grid, 0.10–0.95 by 0.05, can only tune if the scores spread over
it), for the checked tier of ``examples/arena.yaml`` (Mixtral) trained on its own
answers, and for every cheaper model pooled (trained on all their answers).
routellm_mmlu has no answer texts: the fit refuses it with a message, shown as such.

"Before" is the same measurement run with another checkout's ``src`` (the earlier
embedding verifier), in a child process:

    python -m bench.cascade_verifier [--before-src /path/to/old/src]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.reporting import result_stem, write_results
from thrifty.routing.ranking import auc

ROOT = Path(__file__).resolve().parents[1]
STRONG = "gpt-4-1106-preview"
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MMLU = Path("/work/shared/data/routellm_mmlu/mmlu.jsonl.gz")
MARGIN = 0.12


def measure(records: list[Any], checked: list[str]) -> dict[str, Any]:
    from thrifty.cascade.verifier import AnswerVerifier, NotEnoughExamples
    from thrifty.cli.demo import split_halves
    from thrifty.routing.text import prompt_text
    from thrifty.tokens import count_text

    half_a, half_b = split_halves(records)
    started = time.perf_counter()
    try:
        verifier = AnswerVerifier.fit(half_a, checked, STRONG)
    except NotEnoughExamples as exc:
        return {"refused": str(exc)}
    fit_s = time.perf_counter() - started
    prompts, answers, tokens, models, labels = [], [], [], [], []
    for record in half_b:
        ref = record.answers.get(STRONG)
        for model in checked:
            answer = record.answers.get(model)
            if answer is None or answer.quality is None or answer.text is None:
                continue
            if ref is None or ref.quality is None:
                continue
            prompts.append(prompt_text(record.messages))
            answers.append(answer.text)
            tokens.append(answer.output_tokens or count_text(answer.text, model).tokens)
            models.append(model)
            labels.append(float(answer.quality >= ref.quality - MARGIN))
    scores = verifier.probabilities(prompts, answers, tokens, models)
    y = np.array(labels)
    q = np.quantile(scores, [0.1, 0.5, 0.9])
    out = {
        "test_answers_B": len(y),
        "acceptable_share_B": round(float(y.mean()), 3),
        "auc_B": round(auc(scores, y) or float("nan"), 4),
        "p10_p50_p90_B": [round(float(v), 3) for v in q],
        "fit_s": round(fit_s, 2),
        "l2_rows_chosen": getattr(verifier, "l2_rows", None),
    }
    if MIXTRAL in checked and len(checked) > 1:
        mine = np.array([m == MIXTRAL for m in models])
        out["auc_B_mixtral"] = round(auc(scores[mine], y[mine]) or float("nan"), 4)
    return out


def cascade_on_b(records: list[Any]) -> dict[str, Any]:
    """``thrifty tune`` (target 0.95) of the example's cascade (Mixtral checked by the
    heuristics and the verifier, then gpt-4-1106-preview; routing off) on half A, its
    chosen config replayed on half B."""
    import tempfile

    from thrifty.cli.demo import split_halves
    from thrifty.cli.replay_common import read_raw_config
    from thrifty.cli.tune import place_learned_files
    from thrifty.config import parse_config
    from thrifty.replay.report import baseline_rows
    from thrifty.replay.search import deep_merge
    from thrifty.replay.simulator import replay, without_techniques
    from thrifty.replay.summary import totals
    from thrifty.replay.tuner import tune

    examples = ROOT / "examples"
    raw = read_raw_config(examples / "arena.yaml")
    raw = {k: v for k, v in raw.items() if k not in ("routing", "cascade", "cache")}
    raw["cascade"] = {"enabled": True, "tiers": [
        {"model": MIXTRAL, "checks": ["heuristics", "verifier"]}, {"model": STRONG}]}  # fmt: skip
    half_a, half_b = split_halves(records)
    with tempfile.TemporaryDirectory() as work:
        result = tune(half_a, raw, 0.95, base_dir=examples, workdir=Path(work) / "tune")
        out = Path(work) / "tuned.yaml"
        patch = place_learned_files(result.chosen.candidate.patch, out, raw, examples)
        config = parse_config(deep_merge(raw, patch), base_dir=Path(work))
        baseline = replay(half_b, without_techniques(config, STRONG))
        routed = replay(half_b, config)
    rows = baseline_rows(baseline)
    t = totals(routed, baseline, [i for i in rows if routed[i].ok])
    return {
        "chosen": result.chosen.candidate.label,
        "B_savings_pct": round(t["savings_pct_replayed"], 2),
        "B_quality_retained": round(t["quality_retained"] or 0.0, 4),
        "B_escalated_share": round(
            sum(1 for i in rows if routed[i].upstream_model == STRONG) / max(1, len(rows)), 3
        ),
    }


def child() -> dict[str, Any]:
    """Every measurement with whichever ``thrifty`` is importable (this or another src)."""
    from thrifty.logs import configure_logging
    from thrifty.recordings.dataset import bundled_dataset, load_dataset

    configure_logging("error", "text")
    arena = load_dataset(bundled_dataset())
    cheaper = sorted({m for r in arena for m in r.answers} - {STRONG})
    mmlu = load_dataset(MMLU)
    return {
        "arena_bench_v1, Mixtral": measure(arena, [MIXTRAL]),
        "arena_bench_v1, every cheaper model": measure(arena, cheaper),
        "routellm_mmlu, Mixtral": measure(mmlu, [MIXTRAL]),
        "cascade tuned on A, replayed on B": cascade_on_b(arena),
    }


def run_child(src: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "bench.cascade_verifier", "--child"]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before-src", type=Path, help="another checkout's src (the old verifier)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child()))
        return 0
    results = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "before": run_child(args.before_src) if args.before_src else None,
        "after": run_child(ROOT / "src"),
    }
    write(results)
    return 0


def write(results: dict[str, Any]) -> None:
    stem = result_stem("cascade-verifier")
    lines = [
        f"# The cascade verifier on held-out halves ({results['date']})", "",
        "`python -m bench.cascade_verifier --before-src <old src>`. Fitted on half A, scored",
        "on half B; label: quality within 0.12 of gpt-4-1106-preview's answer.", "",
        "| set, checked models | verifier | B answers | acceptable | AUC (B) | p10 / p50 / p90 (B) "
        "| fit s |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for which in ("before", "after"):
        for name, m in (results.get(which) or {}).items():
            if "chosen" in m:
                continue
            if "refused" in m:
                lines.append(f"| {name} | {which} | refused: {m['refused']} | | | | |")
                continue
            extra = f" (Mixtral's: {m['auc_B_mixtral']})" if "auc_B_mixtral" in m else ""
            lines.append(
                f"| {name} | {which} | {m['test_answers_B']} | {m['acceptable_share_B']} "
                f"| {m['auc_B']}{extra} | {' / '.join(str(v) for v in m['p10_p50_p90_B'])} "
                f"| {m['fit_s']} |"
            )
    lines += ["", "`thrifty tune` (target 0.95) of a cascade Mixtral (heuristics + verifier) → "
              "gpt-4-1106-preview on arena_bench_v1 half A, replayed on half B:", "",
              "| verifier | chosen on A | B savings | B quality retained | B answered by GPT-4 |",
              "|---|---|---|---|---|"]  # fmt: skip
    for which in ("before", "after"):
        c = (results.get(which) or {}).get("cascade tuned on A, replayed on B")
        if c:
            lines.append(f"| {which} | {c['chosen']} | {c['B_savings_pct']}% "
                         f"| {c['B_quality_retained']} | {c['B_escalated_share']} |")  # fmt: skip
    write_results(stem, results, lines)
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
