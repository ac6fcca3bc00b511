"""Static embedder and task classifiers: speed on one core, and held-out accuracy.

Pinned to one core (``sched_setaffinity``; numpy/BLAS and tokenizers limited to one
thread). Prompts are the real ones in ``shared/data/task_type_prompts`` (arena-hard v2.0
and v0.1, MT-Bench and Vicuna first turns), cut to 4,000 characters as the router does.
Figures: load time, embeddings/s in batches (short and all prompts), single-query latency,
decision latency per prompt (median and p99) for the rule and the learned classifier, RSS,
and both classifiers' accuracy on the held-out rows recorded in the shipped weights.
Writes ``bench/results/<date>-embeddings.md``. Usage::

    python -m bench.embeddings [--data DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.reporting import result_stem, write_results

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "task_type_prompts"
ROUTER_CHARS = 4000


def one_core() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def load_prompts(data: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """(all prompts, short prompts, {row id: prompt} for the labelled rows)."""
    by_id: dict[str, str] = {}
    extra: list[str] = []
    for name in ("arena_hard_v2.0", "arena_hard_v0.1"):
        for line in (data / f"{name}_questions.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                row = json.loads(line)
                if name == "arena_hard_v2.0":
                    by_id[row["uid"]] = row["prompt"]
                else:
                    extra.append(row["prompt"])
    short = []
    for name in ("mt_bench", "vicuna_bench"):
        for line in (data / f"{name}_questions.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                row = json.loads(line)
                by_id[f"{name}:{row['question_id']}"] = row["turns"][0]
                short.append(row["turns"][0])
    every = [p[:ROUTER_CHARS] for p in [*by_id.values(), *extra]]
    return every, short, by_id


def per_call_ms(fn: Callable[[str], Any], texts: list[str]) -> tuple[float, float]:
    for text in texts[:20]:
        fn(text)  # warm up
    times = []
    for text in texts:
        start = time.perf_counter()
        fn(text)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def rate(embed: Callable[[list[str]], Any], texts: list[str], batch: int = 64) -> float:
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            embed(texts[i : i + batch])
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best


def accuracy(predict: Callable[[str], str], rows: list[tuple[str, str]]) -> float:
    return sum(predict(text) == gold for text, gold in rows) / len(rows)


def run(data: Path) -> dict[str, Any]:
    one_core()
    start = time.perf_counter()
    from thrifty.embeddings import get_embedder
    from thrifty.routing.tasks import LearnedTaskClassifier, RuleTaskClassifier

    emb = get_embedder()
    emb.load()
    load_s = time.perf_counter() - start
    every, short, by_id = load_prompts(data)
    rules, learned = RuleTaskClassifier(), LearnedTaskClassifier()
    meta = learned.meta
    label_map = meta["label_map"]
    gold = _gold(data, label_map)
    held = [(by_id[i][:ROUTER_CHARS], gold[i]) for i in meta["test_ids"]]
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, 1 core pinned",
        "prompts": len(every),
        "mean_chars": round(statistics.mean(map(len, every))),
        "load_s": round(load_s, 3),
        "short_emb_per_s": round(rate(emb.embed, short * 8)),
        "all_emb_per_s": round(rate(emb.embed, every)),
        "embed_one_ms": per_call_ms(emb.embed_one, every),
        "embed_one_short_ms": per_call_ms(emb.embed_one, short),
        "rules_ms": per_call_ms(rules.classify, every),
        "learned_ms": per_call_ms(learned.classify, every),
        "held_out_rows": len(held),
        "rules_acc": accuracy(lambda t: rules.classify(t).task, held),
        "learned_acc": accuracy(lambda t: learned.classify(t).task, held),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    return result


def _gold(data: Path, label_map: dict[str, str]) -> dict[str, str]:
    gold = {}
    for line in (data / "arena_hard_v2.0_questions.jsonl").read_text(encoding="utf-8").split("\n"):
        if line.strip():
            row = json.loads(line)
            gold[row["uid"]] = label_map[row["subcategory"]]
    for name in ("mt_bench", "vicuna_bench"):
        for line in (data / f"{name}_questions.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                row = json.loads(line)
                gold[f"{name}:{row['question_id']}"] = label_map[row["category"]]
    return gold


def write(result: dict[str, Any]) -> Path:
    def ms(pair: tuple[float, float]) -> str:
        return f"{pair[0]:.3f} ms (p99 {pair[1]:.3f})"

    lines = [
        f"# Static embedder and task classifiers ({result['date']}, {result['machine']})",
        "",
        f"Prompts: {result['prompts']} real prompts, cut to {ROUTER_CHARS} chars "
        f"(mean {result['mean_chars']} chars). Load (import + files): {result['load_s']} s. "
        f"Max RSS {result['max_rss_mb']} MB.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| embeddings/s, batch 64, short prompts | {result['short_emb_per_s']:,} |",
        f"| embeddings/s, batch 64, all prompts | {result['all_emb_per_s']:,} |",
        f"| single query `embed_one`, short prompts, median | {ms(result['embed_one_short_ms'])} |",
        f"| single query `embed_one`, all prompts, median | {ms(result['embed_one_ms'])} |",
        f"| decision, `RuleTaskClassifier.classify`, median | {ms(result['rules_ms'])} |",
        f"| decision, `LearnedTaskClassifier.classify` (embedding included), median "
        f"| {ms(result['learned_ms'])} |",
        f"| held-out accuracy, rules ({result['held_out_rows']} rows) "
        f"| {result['rules_acc']:.3f} |",
        f"| held-out accuracy, learned (same rows) | {result['learned_acc']:.3f} |",
        "",
    ]
    return write_results(result_stem("embeddings"), None, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    path = write(run(args.data))
    print(path.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
