"""Compression of the one-message shape: the document and the question in ONE user message.

The gateway's real compression stage (``build_compression``, the shipped defaults) gets
each item as a single user message, in the benchmark's own prompt template; what it would
send upstream is read where the pipeline goes on (the next stage). Measured per source,
on the reported split of ``bench/compression.py`` (70 %, by a hash of the item id; the
extractive weights were tuned on the other 30 %, nothing is tuned here):

* split: share of messages the stage split into document and question;
* question intact: the question (and options) reach the model byte for byte;
* evidence kept: every gold evidence sentence (BAMBOO meetingqa/paperqa) or the answer
  string (altqa, NQ 20 documents) is still in what is sent: the model-free stand-in for
  accuracy, since the uncompressed prompt keeps it by definition (no LLM is called here);
* reduction: input tokens before / after.

Templates: BAMBOO's ``prompt.json`` (``Article: ```{content}`````, then ``Question:`` and
``Options:``; the fence opens mid-line, so it is not a code block), BAMBOO altqa's own
content (instruction, question, document), and Lost in the Middle's ``qa.prompt`` (20
search results, then ``Question:``).

Usage: ``python -m bench.compression_one_message [--data DIR] [--limit N]``; writes
``bench/results/<date>-compression-one-message.{md,json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.compression import DATA, Item, _jsonl, bamboo, lost_in_the_middle, survived
from bench.reporting import result_stem, write_results
from thrifty.compression.build import build_compression
from thrifty.compression.config import CompressionConfig
from thrifty.config.loader import parse_config
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.registry import ModelRegistry
from thrifty.tokens import count_text

MODEL = "gpt-4o-mini"


def templates(data: Path) -> dict[str, str]:
    prompts = json.loads((data / "bamboo_longctx_qa" / "prompt.json").read_text())
    return {name: prompts[name]["final_answer"] for name in ("meetingqa", "paperqa")}


def messages(items: list[Item], data: Path) -> Iterator[tuple[str, Item, str, str]]:
    """(source, item, the one message, the question as it appears in it)."""
    bamboo_templates = templates(data)
    bamboo_rows = {
        name: list(_jsonl(data / "bamboo_longctx_qa" / f"{name}.jsonl.gz"))
        for name in ("meetingqa_4k", "paperqa_4k", "paperqa_16k", "altqa_4k")
    }
    for item in items:
        if item.source in ("meetingqa_4k", "paperqa_4k", "paperqa_16k"):
            row = bamboo_rows[item.source][int(item.id)]
            template = bamboo_templates[item.source.split("_")[0]]
            options = " ".join(row["options"])
            question = f"Question: {row['question']}\nOptions: {options}"
            text = template.format(content=row["content"], question=row["question"],
                                   options=options)  # fmt: skip
            yield item.source, item, text, question
        elif item.source == "altqa_4k":
            content = bamboo_rows["altqa_4k"][int(item.id)]["content"]
            yield item.source, item, content, item.query
        elif item.source == "nq_20docs":
            text = (
                "Write a high-quality answer for the given question using only the provided "
                "search results (some of which might be irrelevant).\n\n"
                f"{item.context}\n\nQuestion: {item.query}\nAnswer:"
            )
            yield item.source, item, text, f"Question: {item.query}"


def stage_and_context() -> tuple[Any, Any]:
    config = parse_config({
        "providers": {"unused": {"base_url": "http://127.0.0.1:9/v1"}},  # never called
        "models": {MODEL: {"provider": "unused"}}, "default_model": MODEL,
    })  # fmt: skip
    registry = ModelRegistry.from_config(config)
    stage = build_compression(CompressionConfig(enabled=True), registry,
                              DispatchStage(registry, {}, config.retries))  # fmt: skip
    return stage, registry


async def sent_upstream(stage: Any, text: str) -> tuple[str, dict[str, Any]]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    ctx = Context(endpoint=CHAT, body=body, requested_model=MODEL, model=MODEL,
                  baseline_model=MODEL)  # fmt: skip
    seen: list[str] = []

    async def next_stage(c: Context) -> Reply:
        seen.append(c.body["messages"][0]["content"])
        return Reply(model=MODEL, provider="bench")

    await stage(ctx, next_stage)
    return seen[0], ctx.techniques.get("compress", {})


def run(data: Path, limit: int | None) -> dict[str, Any]:
    items = [i for i in [*bamboo(data), *lost_in_the_middle(data, limit)] if not i.tune]
    items = [i for i in items if i.source != "kv_75"]  # JSON, not a document and a question
    stage, _ = stage_and_context()
    by: dict[str, dict[str, float]] = {}
    for source, item, text, question in messages(items, data):
        out, info = asyncio.run(sent_upstream(stage, text))
        stats = by.setdefault(source, dict.fromkeys(
            ("n", "split", "intact", "kept", "recall", "before", "after"), 0.0))  # fmt: skip
        share = survived(item, out)
        stats["n"] += 1
        stats["split"] += "split" in info
        stats["intact"] += question in out
        stats["kept"] += share == 1.0
        stats["recall"] += share
        stats["before"] += count_text(text, MODEL).tokens
        stats["after"] += count_text(out, MODEL).tokens
    return {
        source: {
            "items": int(s["n"]), "split": s["split"] / s["n"],
            "question_intact": s["intact"] / s["n"], "evidence_kept": s["kept"] / s["n"],
            "evidence_recall": s["recall"] / s["n"],
            "reduction": s["before"] / max(1.0, s["after"]),
        }
        for source, s in by.items()
    }  # fmt: skip


def render(result: dict[str, Any], when: str) -> str:
    lines = [
        f"# Compression of the one-message shape ({when})", "",
        "Document and question in ONE user message; the gateway's compression stage with "
        "its shipped defaults; reported split of bench/compression.py (70 %). Evidence kept "
        "is the model-free stand-in for accuracy: the uncompressed prompt keeps 100 %.", "",
        "| source | items | split | question intact | evidence kept | evidence recall | "
        "reduction |", "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for source, r in result.items():
        lines.append(
            f"| {source} | {r['items']} | {r['split']:.0%} | {r['question_intact']:.0%} | "
            f"{r['evidence_kept']:.1%} | {r['evidence_recall']:.1%} | {r['reduction']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="NQ / KV items (default 400)")
    args = parser.parse_args()
    result = run(args.data, args.limit)
    when = dt.date.today().isoformat()
    report = render(result, when)
    write_results(result_stem("compression-one-message", when), result, report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
