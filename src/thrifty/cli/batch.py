"""``thrifty batch submit|status|results FILE.jsonl``: provider batch jobs from a shell.

Runs in-process with the config's providers, job store and ledger (no gateway needed).
``submit`` uploads FILE.jsonl (OpenAI batch format) and starts the job, remembering its
id in ``FILE.batch.json``; ``status`` and ``results`` take that FILE (or a batch id).
``results`` writes ``FILE.results.jsonl`` (and ``FILE.errors.jsonl`` for failed lines);
each result is a ledger row priced at the model's batch rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from thrifty.batching.jobs import ENDPOINT, BatchJobs
from thrifty.config import load_config
from thrifty.errors import ConfigError, ThriftyError
from thrifty.governance.jobs import JobAdmission
from thrifty.governance.keys.identity import Caller
from thrifty.runtime import Runtime


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("batch", help="provider batch jobs (typically 50%% off)")
    parser.add_argument("action", choices=("submit", "status", "results"))
    parser.add_argument("target", help="FILE.jsonl (submit: the requests), or a batch id")
    parser.add_argument("--config", default="thrifty.yaml", help="config file (thrifty.yaml)")
    parser.set_defaults(func=run)


def _state_path(source: Path) -> Path:
    return source.with_suffix(".batch.json")


def _batch_id(target: str) -> str:
    if target.startswith("batch_"):
        return target
    state = _state_path(Path(target))
    if not state.exists():
        raise ConfigError(f"{state} not found: run 'thrifty batch submit {target}' first")
    return str(json.loads(state.read_text())["batch_id"])


async def _submit(jobs: BatchJobs, source: Path, caller: Caller) -> dict[str, Any]:
    try:
        content = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc}") from exc
    uploaded = await jobs.upload(None, source.name, "batch", content, caller)
    body = {"input_file_id": uploaded["id"], "endpoint": ENDPOINT, "completion_window": "24h"}
    batch = await jobs.create(None, body, caller)
    _state_path(source).write_text(json.dumps({"batch_id": batch["id"], "file": uploaded["id"]}))
    return batch


async def _results(jobs: BatchJobs, batch: dict[str, Any], source: Path) -> str:
    counts = {"ok": 0, "failed": 0}
    written = []
    for field, suffix, kind in (("output_file_id", ".results.jsonl", "ok"),
                                ("error_file_id", ".errors.jsonl", "failed")):  # fmt: skip
        if not batch.get(field):
            continue
        content = await jobs.file_content(None, batch[field])
        path = source.with_suffix(suffix)
        path.write_bytes(content)
        written.append(str(path))
        counts[kind] = sum(1 for line in content.splitlines() if line.strip())
    return f"wrote {', '.join(written) or 'nothing'}: {counts['ok']} ok, {counts['failed']} failed"


async def _main(args: argparse.Namespace) -> int:
    runtime = Runtime(load_config(args.config))
    admission = JobAdmission(runtime.admission)  # settles jobs the gateway admitted, too
    jobs = BatchJobs(runtime.config, runtime.registry, runtime.ledger, admission=admission)
    try:
        if args.action == "submit":
            caller = runtime.authenticate(None, enforce=False)  # the CLI holds the config
            batch = await _submit(jobs, Path(args.target), caller)
            print(f"{batch['id']} {batch['status']}")
            return 0
        batch = await jobs.retrieve(None, _batch_id(args.target))
        counts = batch.get("request_counts") or {}
        line = f"{batch['id']} {batch['status']} {counts.get('completed', 0)}/"
        print(line + f"{counts.get('total', 0)} done, {counts.get('failed', 0)} failed")
        if args.action == "status":
            return 0
        if batch["status"] != "completed":
            print("not completed yet: no results to fetch")
            return 1
        source = Path(args.target if not args.target.startswith("batch_") else batch["id"])
        print(await _results(jobs, batch, source))
        return 0
    except ThriftyError as exc:
        print(f"thrifty batch: {exc.message}")
        return 1
    finally:
        await runtime.aclose()


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))
