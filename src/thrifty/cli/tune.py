"""``thrifty tune``: search the enabled techniques' knobs on recorded traffic."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from thrifty.cli.replay_common import read_dataset, read_raw_config
from thrifty.config import parse_config
from thrifty.errors import ConfigError
from thrifty.replay.html import render_html
from thrifty.replay.references import model_matrix, reference_points
from thrifty.replay.report import baseline_rows, below_target, build_report, comparison_lines
from thrifty.replay.search import deep_merge
from thrifty.replay.summary import render_table, summarize, totals
from thrifty.replay.tuner import TuneResult, tune
from thrifty.routing.config import RoutingConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "tune", help="find the cheapest settings that keep quality, with a held-out estimate"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="JSON Lines file, or 'arena-bench' (shipped)")
    source.add_argument(
        "--from-ledger", metavar="LEDGER",
        help="the shadow-evaluated requests of a ledger (docs/shadow.md)",
    )  # fmt: skip
    parser.add_argument("--config", required=True, help="config whose enabled techniques are tuned")
    parser.add_argument(
        "--target-quality", type=float, default=0.95, help="quality retained to keep (0..1)"
    )
    parser.add_argument("--out", required=True, help="where to write the tuned config")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="use only the first N requests")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--html", metavar="OUT", help="write a self-contained HTML report")
    parser.add_argument(
        "--cache-pairs",
        metavar="FILE",
        help="labelled question pairs (JSON Lines a, b, same): picks the semantic thresholds",
    )
    parser.add_argument(
        "--false-hit-budget", type=float, default=0.01, help="semantic cache: false hits per hit"
    )
    parser.add_argument(
        "--embed-cache",
        metavar="DIR",
        help="keep the prompt embeddings (routing.encoder static|minilm) in DIR, so a "
        "repeat tune does not embed the same prompts again",
    )
    parser.set_defaults(func=run)


def candidate_points(result: TuneResult) -> list[dict[str, Any]]:
    rows = baseline_rows(result.baseline)
    points = []
    for item in result.evaluated:
        t = totals(item.outcomes, result.baseline, [i for i in rows if item.outcomes[i].ok])
        points.append(
            {
                "label": item.candidate.label,
                "cost": t["actual_cost"],
                "quality_retained": t["quality_retained"],
                "chosen": item is result.chosen,
            }
        )
    return points


def _tune_cache(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Choose the semantic thresholds (similarity, pair check) on half the pairs, report
    the other half; a budget nothing meets turns the semantic cache off rather than serving
    wrong answers."""
    from thrifty.cache.config import GUARDS
    from thrifty.cache.tune import load_pairs, tune_threshold

    semantic = (raw.get("cache") or {}).get("semantic") or {}
    check = semantic.get("pair_check") or {}
    choice = tune_threshold(
        load_pairs(args.cache_pairs), args.false_hit_budget, semantic.get("guards") or GUARDS,
        pair_check=check.get("enabled", True), model=check.get("model"),
    )  # fmt: skip
    patch: dict[str, Any] = (
        {"threshold": choice["threshold"]}
        if choice["threshold"] is not None
        else {"enabled": False}
    )
    if choice["pair_check_threshold"] is not None:
        patch["pair_check"] = {"threshold": choice["pair_check_threshold"]}
    raw.update(deep_merge(raw, {"cache": {"semantic": patch}}))
    return choice


def write_tuned(raw: dict[str, Any], result: TuneResult, path: str, base_dir: Path) -> None:
    held = result.held_out
    header = (
        f"# Tuned by `thrifty tune` (target quality retained {held['target_quality']}).\n"
        f"# Chosen: {result.chosen.candidate.label}\n"
        f"# Held-out ({held['folds']}-fold) estimate: savings {held['savings_pct']:.1f}% "
        f"(95% CI {', '.join(f'{v:.1f}' for v in held['savings_pct_ci'])}), quality retained "
        f"{(held['quality_retained'] or 0):.3f} "
        f"(95% CI {', '.join(f'{v:.3f}' for v in held['quality_retained_ci'])}).\n"
    )
    tuned = deep_merge(
        raw, place_learned_files(result.chosen.candidate.patch, Path(path), raw, base_dir)
    )
    Path(path).write_text(header + yaml.safe_dump(tuned, sort_keys=False, allow_unicode=True))


LEARNED_FILES = (("routing", "predictor"), ("cascade", "verifier"))


def place_learned_files(
    patch: dict[str, Any], out: Path, raw: dict[str, Any], base_dir: Path
) -> dict[str, Any]:
    """Copy the learned files the tuned config uses next to it, under relative names.

    A file comes from the chosen patch, or (for the config as written) from the raw
    config, resolved against the folder of the config it came from.
    """
    patch = {k: dict(v) if isinstance(v, dict) else v for k, v in patch.items()}
    for section, key in LEARNED_FILES:
        source = (patch.get(section) or {}).get(key) or (raw.get(section) or {}).get(key)
        if not source:
            continue
        source_path = Path(source) if Path(source).is_absolute() else base_dir / source
        target = out.with_name(f"{out.stem}.{key}.npz")
        if source_path.resolve() != target.resolve():
            shutil.copyfile(source_path, target)
        patch.setdefault(section, {})[key] = target.name
    return patch


def _shadowed(ledger: str, limit: int | None) -> list[Any]:
    """The shadow-evaluated requests of ``ledger``, as a graded multi-model dataset."""
    from thrifty.replay.importers.ledger import import_ledger

    try:
        records = import_ledger(ledger, shadowed_only=True)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    if not records:
        raise ConfigError(f"{ledger}: no shadow-evaluated requests (turn on shadow:)")
    return records[:limit] if limit else records


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="thrifty-tune-") as workdir:
        return _run(args, Path(workdir))


def _work_dir(workdir: Path, embed_cache: str | None) -> Path:
    """The tuner's work dir; its ``embeddings`` folder (where every fit of the tune
    keeps prompt vectors) is ``embed_cache`` when given, so the vectors outlive it."""
    if embed_cache:
        kept = Path(embed_cache).expanduser().resolve()
        if kept.exists() and not kept.is_dir():
            raise ConfigError(f"--embed-cache {embed_cache}: not a directory")
        kept.mkdir(parents=True, exist_ok=True)
        (workdir / "embeddings").symlink_to(kept, target_is_directory=True)
    return workdir


def _run(args: argparse.Namespace, workdir: Path) -> int:
    if not 0 < args.target_quality <= 1.5:
        raise SystemExit("thrifty tune: --target-quality is a ratio, e.g. 0.95")
    records = (
        _shadowed(args.from_ledger, args.limit)
        if args.from_ledger
        else read_dataset(args.dataset, args.limit)
    )
    raw = read_raw_config(args.config)
    base_dir = Path(args.config).resolve().parent
    result = tune(
        records, raw, args.target_quality, folds=args.folds, seed=args.seed, base_dir=base_dir,
        workdir=_work_dir(workdir, args.embed_cache),
        progress=None if args.json else print_progress,
    )  # fmt: skip
    config = parse_config(deep_merge(raw, result.chosen.candidate.patch), base_dir=base_dir)
    baseline_model = config.baseline_model or config.default_model or ""
    summary = summarize(result.chosen.outcomes, result.baseline, baseline_model)
    cache_choice = _tune_cache(raw, args) if args.cache_pairs else None
    write_tuned(raw, result, args.out, base_dir)
    output = {
        "predictor": predictor_summary(config.routing, records),
        "chosen": result.chosen.candidate.label,
        "candidates": len(result.evaluated),
        "fit_on_all_rows": result.fit,
        "held_out": result.held_out,
        "summary": summary,
        "out": args.out,
        "semantic_cache": cache_choice,
    }
    rows = baseline_rows(result.baseline)
    base_cost = sum(result.baseline[i].cost for i in rows)
    held_share = result.held_out["actual_cost"] / max(1e-12, result.held_out["baseline_cost"])
    references = reference_points(  # random at the held-out estimate's cost, the oracle
        model_matrix(records, config), result.baseline, rows, held_share * base_cost
    )
    output["references"] = references
    if args.html:
        report = build_report(
            f"Thrifty tune — {Path(args.dataset or args.from_ledger).name} "
            f"({len(records)} requests)",
            summary,
            references,
            candidate_points(result),
            result.held_out,
        )
        Path(args.html).write_text(render_html(report))
    if args.json:
        print(json.dumps(output, indent=2))
        return 0
    held = result.held_out
    warning = below_target(held)
    print(render_table(summary))
    if output["predictor"]:
        print("\n" + predictor_line(output["predictor"]))
    if output["semantic_cache"]:
        print("\nsemantic cache: " + _readable(output["semantic_cache"]))
    print(
        f"\nchosen: {result.chosen.candidate.label} (of {len(result.evaluated)} candidates)\n"
        f"held-out {held['folds']}-fold estimate: savings {held['savings_pct']:.1f}% "
        f"{_interval(held['savings_pct_ci'], '{:.1f}%')}, quality retained "
        f"{(held['quality_retained'] or 0):.3f} {_interval(held['quality_retained_ci'], '{:.3f}')}"
        f"\nsafety margin: {held['margin_z']:g} standard errors (the smallest whose choices "
        f"kept the target out of fold)"
        f"\nbeside it (all rows; random at the estimate's cost):"
    )
    print("\n".join(comparison_lines(references, base_cost)))
    if warning:
        red = sys.stdout.isatty()
        print(f"{RED if red else ''}WARNING: {warning}{RESET if red else ''}")
    print(f"wrote {args.out}")
    return 0


RED, RESET = "\033[31m", "\033[0m"


def predictor_summary(section: RoutingConfig, records: list[Any]) -> dict[str, Any] | None:
    """What the tuned config's quality predictor learned: its cross-fitted AUC on the
    tuning rows (how well it ranks; 0.5 = no better than random routing), the labelled
    rows of its cheaper models, whether the fit kept the prior it was offered, and how
    well its answer-length model ranks the reference's recorded lengths (cross-fitted
    Spearman; None without lengths to learn from).
    ``section``: the tuned config's routing section (its predictor path still valid)."""
    from thrifty.routing.predictor import QualityPredictor
    from thrifty.routing.ranking import predictor_auc

    if not section.enabled or not section.predictor or section.strategy == "rules":
        return None  # the predictor is not what routes
    try:
        predictor = QualityPredictor.load(section.predictor)
    except (OSError, ValueError) as exc:  # a file from elsewhere: the tune still stands
        sys.stderr.write(f"  predictor not summarised ({section.predictor}): {exc}\n")
        return None
    offered = section.prior != "none"
    heads = predictor.support[:-1]  # the reference's own column is last
    return {
        "auc_cross_fitted": predictor_auc(predictor, records),
        "labelled_rows": int(heads.max()) if len(heads) else 0,
        "prior": section.prior if offered else None,
        "prior_kept": bool(predictor.prior_path) if offered else None,
        "length_rank_correlation": predictor.lengths.rank_correlation,
    }


def predictor_line(summary: dict[str, Any]) -> str:
    auc = summary["auc_cross_fitted"]
    line = (
        f"predictor: AUC {'n/a' if auc is None else f'{auc:.3f}'} cross-fitted on "
        f"{summary['labelled_rows']} labelled rows (a cheaper model as good as the "
        "reference;\n  0.5 ranks no better than random routing)"
    )
    if summary["prior"] is not None:
        kept = "kept" if summary["prior_kept"] else "dropped, the fit was better without it"
        line += f"; prior {summary['prior']}: {kept}"
    lengths = summary.get("length_rank_correlation")
    if lengths is not None:
        line += (
            f"\nanswer lengths: rank correlation {lengths:.2f} with the reference's, "
            "cross-fitted (0: every request expects the mean length)"
        )
    return line


def _interval(bounds: Any, form: str) -> str:
    """``[low, high]`` with each bound in ``form`` (a confidence interval, rounded)."""
    if not isinstance(bounds, list | tuple) or len(bounds) != 2 or None in bounds:
        return ""
    return "[" + ", ".join(form.format(b) for b in bounds) + "]"


def _readable(values: Any) -> str:
    """``key value, ...`` with floats rounded to 4 significant digits (not a raw dict)."""
    if not isinstance(values, dict):
        return str(values)
    parts = [
        f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in values.items()
    ]
    return ", ".join(parts)


def print_progress(message: str) -> None:
    """``thrifty tune``'s progress lines (stderr, so ``--json`` output stays clean)."""
    sys.stderr.write(f"  {message}\n")
    sys.stderr.flush()
