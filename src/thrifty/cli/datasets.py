"""``thrifty datasets``: build replay datasets from other sources and check them.

::

    thrifty datasets import arena-bench DIR -o arena.jsonl.gz
    thrifty datasets validate FILE

Import sources live in :data:`IMPORT_SOURCES`; adding one (e.g. the ledger) is one
entry: how to add its arguments and how to turn the parsed arguments into records.
Exit codes: 0 OK, 2 bad input (the message names the file, line and field).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thrifty.recordings.dataset import DatasetError, ReplayRecord, load_dataset, write_dataset

__all__ = ["IMPORT_SOURCES", "ImportSource", "add_parser", "run"]


@dataclass(frozen=True, slots=True)
class ImportSource:
    """One ``thrifty datasets import SOURCE`` subcommand; ``-o FILE`` is added for it."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    load: Callable[[argparse.Namespace], list[ReplayRecord]]


def _arena_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", metavar="DIR", help="the arena_bench_v1 folder (questions, answers, scores)"
    )


def _arena_load(args: argparse.Namespace) -> list[ReplayRecord]:
    from thrifty.replay.importers.arena import import_arena_bench

    return import_arena_bench(args.directory)


def _ledger_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ledger", metavar="LEDGER", help="a ledger file (SQLite)")
    parser.add_argument("--since", help="only traffic since: 30m, 12h, 7d, 2026-11-01, ISO time")


def _ledger_load(args: argparse.Namespace) -> list[ReplayRecord]:
    from thrifty.ledger.reports import parse_since
    from thrifty.replay.importers.ledger import import_ledger

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise DatasetError(args.ledger, None, "--since", str(exc)) from None
    records = import_ledger(args.ledger, since)
    if not records:
        raise DatasetError(
            args.ledger, None, None,
            "no captured requests: serve with `ledger: {capture_bodies: true}` to record them",
        )  # fmt: skip
    return records


IMPORT_SOURCES: dict[str, ImportSource] = {
    "ledger": ImportSource(
        help="your own traffic from a ledger (served with ledger.capture_bodies: true)",
        add_arguments=_ledger_arguments,
        load=_ledger_load,
    ),
    "arena-bench": ImportSource(
        help="arena_bench_v1: 300 prompts, 15 GPT-4-judged models",
        add_arguments=_arena_arguments,
        load=_arena_load,
    ),
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``datasets`` to a ``parser.add_subparsers()`` result; dispatch via ``args.func``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "datasets", help="import and validate replay datasets"
    )
    commands = parser.add_subparsers(dest="datasets_command", metavar="COMMAND", required=True)

    importer = commands.add_parser("import", help="convert a source into a replay dataset")
    sources = importer.add_subparsers(dest="source", metavar="SOURCE", required=True)
    for name, source in IMPORT_SOURCES.items():
        sub = sources.add_parser(name, help=source.help)
        source.add_arguments(sub)
        sub.add_argument(
            "-o", "--out", required=True, metavar="FILE", help="output .jsonl or .jsonl.gz"
        )
        sub.set_defaults(func=run_import)

    validate = commands.add_parser("validate", help="check a dataset and summarise it")
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(func=run_validate)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Dispatch on the subcommand; returns the process exit code."""
    if args.datasets_command == "import":
        return run_import(args)
    if args.datasets_command == "validate":
        return run_validate(args)
    print(f"thrifty datasets: unknown command {args.datasets_command!r}", file=sys.stderr)
    return 2


def run_import(args: argparse.Namespace) -> int:
    """Import with the chosen source and write the dataset to ``args.out``."""
    try:
        records = IMPORT_SOURCES[args.source].load(args)
        path = write_dataset(records, args.out)
    except (DatasetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {_headline(records)}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Load ``args.file`` with every check; print a summary, or the first error."""
    try:
        records = load_dataset(args.file)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{Path(args.file)}: OK, {_headline(records)}")
    for line in _per_model(records):
        print(line)
    return 0


def _headline(records: Sequence[ReplayRecord]) -> str:
    answers = [a for r in records for a in r.answers.values()]
    models = {m for r in records for m in r.answers}
    graded = sum(a.quality is not None for a in answers)
    bare = sum(not r.answers for r in records)
    return (
        f"{len(records):,} records, {len(models):,} models, {len(answers):,} answers "
        f"({graded:,} with quality), {bare:,} records without answers (cost only)"
    )


def _per_model(records: Sequence[ReplayRecord]) -> list[str]:
    counts: Counter[str] = Counter()
    graded: Counter[str] = Counter()
    totals: dict[str, float] = {}
    for record in records:
        for model, answer in record.answers.items():
            counts[model] += 1
            if answer.quality is not None:
                graded[model] += 1
                totals[model] = totals.get(model, 0.0) + answer.quality
    if not counts:
        return []
    width = max(len("model"), *(len(m) for m in counts))
    lines = [f"  {'model':<{width}}  {'answers':>7}  {'missing':>7}  {'mean quality':>12}"]
    for model in sorted(counts):
        mean = f"{totals[model] / graded[model]:.3f}" if graded[model] else "-"
        missing = len(records) - counts[model]
        lines.append(f"  {model:<{width}}  {counts[model]:>7}  {missing:>7}  {mean:>12}")
    return lines
