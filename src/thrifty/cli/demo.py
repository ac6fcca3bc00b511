"""``thrifty demo``: tune on half of a real benchmark, serve the other half, show the bill.

No API key needed. Using the shipped arena_bench_v1 set (300 real prompts, 15 models'
recorded answers, GPT-4 grades) and ``examples/arena.yaml``:

1. ``thrifty tune`` runs on one half of the prompts (target: 95% quality retained);
2. the test upstream starts, answering each model's request with its recorded answer;
3. the gateway starts with the tuned config;
4. the other half is sent through the official ``openai`` SDK (plus some repeats), as an
   app would, naming no model, so the gateway's policy decides;
5. the ledger report (baseline cost, actual cost, savings) is printed, with the quality
   retained read from the recorded grades of the answers that came back, and an HTML
   report is written: its cards, waterfall and shares are read from the same ledger (the
   same numbers as the terminal bill), its cost–quality chart and held-out estimate from
   the tuning half.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from thrifty.cli.processes import free_port, wait_healthy
from thrifty.cli.replay_common import read_raw_config
from thrifty.cli.tune import place_learned_files, print_progress
from thrifty.recordings.dataset import ReplayRecord, bundled_dataset, load_dataset
from thrifty.replay.search import deep_merge
from thrifty.replay.tuner import tune

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "arena.yaml"
KEY = "demo-key"


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("demo", help="tune, serve and bill the arena benchmark, offline")
    parser.add_argument("--workdir", default="var/demo", help="where ledger and reports go")
    parser.add_argument("--config", default=str(EXAMPLE), help="config to tune (arena models)")
    parser.add_argument("--target-quality", type=float, default=0.95)
    parser.add_argument(
        "--repeat-share", type=float, default=0.1, help="share of prompts sent twice"
    )
    parser.set_defaults(func=run)


def split_halves(records: Sequence[ReplayRecord]) -> tuple[list[ReplayRecord], list[ReplayRecord]]:
    """A stable split by id hash: the tuning half never sees the served half."""
    tune_half, serve_half = [], []
    for record in records:
        digit = hashlib.sha256(record.id.encode()).digest()[0]
        (tune_half if digit % 2 == 0 else serve_half).append(record)
    return tune_half, serve_half


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(1, total))
    if done != total and filled == int(width * (done - 1) / max(1, total)):
        return  # redraw only when the bar grows
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _serve_config(
    raw: dict[str, Any], upstream_port: int, gateway_port: int, ledger: Path
) -> dict[str, Any]:
    config = deep_merge(raw, {
        "server": {"host": "127.0.0.1", "port": gateway_port},
        "auth": {"enabled": True, "keys": [KEY]},
        "ledger": {"path": str(ledger)},
        "cache": {"path": str(ledger.with_name("cache.db"))},
        "logging": {"level": "error"},
    })  # fmt: skip
    for provider in config["providers"].values():
        provider["base_url"] = f"http://127.0.0.1:{upstream_port}/v1"
    return config


def _drive(
    port: int, records: Sequence[ReplayRecord], repeat_share: float
) -> list[tuple[ReplayRecord, str | None]]:
    """Send each record through the SDK (no model named); return which model answered."""
    import openai

    rng = random.Random(0)
    plan = list(records) + rng.sample(list(records), int(len(records) * repeat_share))
    served: list[tuple[ReplayRecord, str | None]] = []
    with openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0
    ) as client:
        for index, record in enumerate(plan, 1):
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="", messages=list(record.messages), **record.params
                )
                served.append((record, raw.headers.get("x-thrifty-model")))
            except openai.NotFoundError:
                served.append((record, None))  # the dataset has no answer of that model
            _progress(index, len(plan), "requests")
    return served


def _cache_hits(ledger: Path) -> int:
    """Requests the exact or semantic cache answered."""
    from thrifty.ledger.stores.sqlite import SqliteLedgerStore

    store = SqliteLedgerStore(ledger)
    try:
        rows = store.query_requests()
    finally:
        store.close()
    return sum(
        1 for r in rows if (r.get("techniques") or {}).get("cache", {}).get("result") == "hit"
    )


def _quality(
    served: Sequence[tuple[ReplayRecord, str | None]], baseline: str
) -> tuple[float, float, int]:
    actual = base = 0.0
    graded = 0
    for record, model in served:
        answer = record.answers.get(model or "")
        reference = record.answers.get(baseline)
        if (
            answer is None
            or answer.quality is None
            or reference is None
            or reference.quality is None
        ):
            continue
        actual += answer.quality
        base += reference.quality
        graded += 1
    return actual, base, graded


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dataset = bundled_dataset()
    records = load_dataset(dataset)
    tune_half, serve_half = split_halves(records)
    raw = read_raw_config(args.config)
    print(f"1. tuning {args.config} on {len(tune_half)} of {len(records)} arena prompts "
          f"(target quality retained {args.target_quality:.0%})")  # fmt: skip
    base_dir = Path(args.config).resolve().parent
    result = tune(tune_half, raw, args.target_quality, base_dir=base_dir, progress=print_progress)
    held = result.held_out
    retained = held["quality_retained"] or 0
    print(f"   chosen: {result.chosen.candidate.label}; held-out estimate: savings "
          f"{held['savings_pct']:.1f}%, quality retained {retained:.3f}")  # fmt: skip
    tuned = deep_merge(
        raw,
        place_learned_files(result.chosen.candidate.patch, workdir / "tuned.yaml", raw, base_dir),
    )
    upstream_port, gateway_port = free_port(), free_port()
    ledger = workdir / "ledger.db"
    for stale in workdir.glob("*.db*"):
        stale.unlink()  # a fresh ledger and an empty cache: the demo starts cold
    config_path = workdir / "tuned.yaml"
    config_path.write_text(
        yaml.safe_dump(_serve_config(tuned, upstream_port, gateway_port, ledger), sort_keys=False)
    )
    thrifty = [sys.executable, "-m", "thrifty.cli.main"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    upstream = subprocess.Popen(
        [*thrifty, "upstream", "--port", str(upstream_port), "--dataset", str(dataset)], env=env
    )
    gateway = subprocess.Popen([*thrifty, "serve", "--config", str(config_path)], env=env)
    try:
        wait_healthy(f"http://127.0.0.1:{upstream_port}/health", upstream)
        wait_healthy(f"http://127.0.0.1:{gateway_port}/health", gateway)
        print(f"2. test upstream on :{upstream_port} answers from the recordings; "
              f"gateway on :{gateway_port} runs the tuned config")  # fmt: skip
        print(f"3. sending the other {len(serve_half)} prompts (+{args.repeat_share:.0%} repeats) "
              "through the official openai SDK")  # fmt: skip
        served = _drive(gateway_port, serve_half, args.repeat_share)
    finally:
        for process in (gateway, upstream):
            process.terminate()
        for process in (gateway, upstream):
            process.wait(timeout=30)
    baseline = tuned.get("baseline_model") or tuned.get("default_model") or ""
    actual_q, base_q, graded = _quality(served, baseline)
    missing = sum(model is None for _, model in served)
    print("\n4. the bill, from the gateway's ledger:")
    sys.stdout.flush()
    subprocess.call([*thrifty, "report", "--ledger", str(ledger), "--by", "model"])
    print(f"cache hits: {_cache_hits(ledger)}")
    if graded:
        print(f"\nquality retained (recorded GPT-4 grades of the answers served vs {baseline}'s): "
              f"{actual_q / base_q:.1%} over {graded} graded answers; "
              f"{missing} requests had no recorded answer for the chosen model")  # fmt: skip
    html = workdir / "report.html"
    quality = {
        "quality_actual": actual_q / graded if graded else None,
        "quality_baseline": base_q / graded if graded else None,
        "quality_retained": actual_q / base_q if base_q else None,
        "quality_rows": graded,
        "missing_answers": missing,
    }
    html.write_text(_html_report(tune_half, serve_half, tuned, result, workdir, ledger, quality))
    print(f"HTML report of the served half (this bill): {html}")
    print(f"how the tuner chose (the tuning half): {html.with_name('tune.html')}")
    return 0


def _html_report(
    tune_half: Sequence[ReplayRecord],
    records: Sequence[ReplayRecord],
    tuned: dict[str, Any],
    result: Any,
    workdir: Path,
    ledger: Path,
    quality: dict[str, Any],
) -> str:
    """Cards, waterfall and shares: the gateway's ledger of the served traffic, the same
    numbers as the terminal bill (``quality``: the served answers' recorded grades). The
    cost–quality chart (the tuner's candidates and the reference points, on the tuning
    half, where the choice was made) goes to ``tune.html``."""
    from thrifty.cli.tune import candidate_points
    from thrifty.config import parse_config
    from thrifty.ledger.stores.sqlite import SqliteLedgerStore
    from thrifty.replay.html import render_html
    from thrifty.replay.references import model_matrix, reference_points
    from thrifty.replay.report import baseline_rows, build_report
    from thrifty.replay.summary import ledger_summary, summarize

    config = parse_config(tuned, base_dir=workdir.resolve())
    baseline_model = config.baseline_model or config.default_model or ""
    store = SqliteLedgerStore(ledger)
    try:
        summary = {**ledger_summary(store, baseline_model), **quality}
    finally:
        store.close()
    chosen_cost = next(p["cost"] for p in candidate_points(result) if p["chosen"])
    references = reference_points(
        model_matrix(tune_half, config),
        result.baseline,
        baseline_rows(result.baseline),
        chosen_cost,
    )
    report = build_report(
        f"Thrifty demo — arena_bench_v1, {summary['requests']} requests served "
        f"({len(records)} prompts and repeats; tuned on the other half)",
        summary,
        references,
        candidate_points(result),
        result.held_out,
    )
    # One story per page: the served half here, the tuner's choice on its own page.
    tuning = f"the {len(tune_half)} tuning prompts, where the tuner chose"
    report.update(scope=f"the {summary['requests']} requests the gateway served ({len(records)} "
                  "prompts the tuner never saw, and repeats): the terminal bill's numbers",
                  curve_scope=tuning, curve_page="tune.html")  # fmt: skip
    tune_report = build_report(
        f"Thrifty demo — how the policy was chosen ({len(tune_half)} tuning prompts)",
        summarize(result.chosen.outcomes, result.baseline, baseline_model),
        references,
        candidate_points(result),
        result.held_out,
    )
    tune_report.update(scope=tuning, curve_scope=tuning)
    (workdir / "tune.html").write_text(render_html(tune_report))
    return render_html(report)
