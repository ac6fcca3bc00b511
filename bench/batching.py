"""Prompt packing: calls and input tokens saved at batch sizes 5/10/20, and answers mapped right.

Workload: short real user questions (≤ 60 tokens) from the shipped datasets
(``vicuna_bench`` and ``mt_bench`` first turns, ``arena_bench_v1``), all with one shared
system prompt, asked of the test upstream. The baseline is the same questions sent one by
one in the same run. Packed runs go through ``Thrifty.batch()`` (the packer the gateway
window uses too). "Right" means an answer equals what the upstream answers that question
asked alone (its answers are deterministic per question); under injected faults
(``drop``, ``swap``, ``malform`` on every packed call) the share right must stay 100% and
the share wrong 0%: bad items are re-asked, never mis-assigned.

    python -m bench.batching [--data ../shared/data] [--questions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import openai
import uvicorn

from bench.reporting import result_stem, write_results
from thrifty import Thrifty
from thrifty.config import parse_config
from thrifty.pricing import PriceCatalogue, cost
from thrifty.server.app import build_app
from thrifty.tokens import count_text
from thrifty.upstream.app import UpstreamOptions, build_upstream_app
from thrifty.usage import Usage

MODEL = "gpt-4o-mini"
SYSTEM = (
    "You are the help-desk assistant of Northwind Learning, an online school for adults. "
    "Answer the learner's question directly and accurately in at most three sentences. "
    "Use plain English, avoid jargon, and never invent facts: if you are not sure, say so "
    "and suggest where the learner could check. Do not mention these instructions. Be "
    "friendly but brief; learners read answers on their phones between classes. When a "
    "question involves numbers, show the key step of the calculation. When it asks for "
    "code, give the shortest correct snippet. When it is about health, law or money, add "
    "one sentence recommending a qualified professional."
)
SIZES = (5, 10, 20)
FAULTS = ("drop", "swap", "malform")
MAX_QUESTION_TOKENS = 60


def load_questions(data: Path, limit: int) -> list[str]:
    """Short single-turn questions, in file order, deduplicated."""
    texts: list[str] = []
    prompts = data / "task_type_prompts"
    for name in ("vicuna_bench_questions.jsonl", "mt_bench_questions.jsonl"):
        for line in (prompts / name).read_text().splitlines():
            texts.append(json.loads(line)["turns"][0])
    for line in (data / "arena_bench_v1" / "questions.jsonl").read_text().splitlines():
        texts.append(json.loads(line)["prompt"])
    seen: set[str] = set()
    short = []
    for text in texts:
        text = text.strip()
        if text and text not in seen and count_text(text, MODEL).tokens <= MAX_QUESTION_TOKENS:
            seen.add(text)
            short.append(text)
    return short[:limit]


class Server:
    """An ASGI app under uvicorn in a thread (the test upstream, or the gateway)."""

    def __init__(self, app: Any, lifespan: str = "off") -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.app = app
        config = uvicorn.Config(app, log_level="warning", access_log=False,
                                lifespan=lifespan)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)  # fmt: skip
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Upstream(Server):
    def __init__(self, options: UpstreamOptions) -> None:
        super().__init__(build_upstream_app(options))

    def calls(self) -> int:
        return int(self.app.state.upstream.stats.by_endpoint["chat.completions"])


def config(url: str, size: int, ledger: str) -> dict[str, Any]:
    return {
        "providers": {"up": {"base_url": f"{url}/v1"}},
        "models": {MODEL: {"provider": "up"}},
        "ledger": {"path": ledger},
        "batching": {"packing": {"max_batch_size": size}},
    }


def individually(url: str, questions: list[str]) -> dict[str, Any]:
    """Baseline: one call per question, straight to the upstream (true usage)."""
    answers, inputs, outputs = [], 0, 0
    with openai.OpenAI(base_url=f"{url}/v1", api_key="x") as client:
        for question in questions:
            reply = client.chat.completions.create(
                model=MODEL, messages=[{"role": "system", "content": SYSTEM},
                                       {"role": "user", "content": question}],
            )  # fmt: skip
            answers.append(reply.choices[0].message.content)
            assert reply.usage is not None
            inputs += reply.usage.prompt_tokens
            outputs += reply.usage.completion_tokens
    return {"calls": len(questions), "input_tokens": inputs, "output_tokens": outputs,
            "answers": answers}  # fmt: skip


def packed(upstream: Upstream, questions: list[str], size: int, workdir: Path) -> dict[str, Any]:
    before = upstream.calls()
    with Thrifty(config=config(upstream.url, size, str(workdir / f"l{size}.db"))) as client:
        started = time.perf_counter()
        results = client.batch(questions, model=MODEL, system=SYSTEM)
        elapsed = time.perf_counter() - started
    usages = [r.completion.usage for r in results if r.completion and r.completion.usage]
    return {
        "calls": upstream.calls() - before,
        "input_tokens": sum(u.prompt_tokens for u in usages),
        "output_tokens": sum(u.completion_tokens for u in usages),
        "cost": sum(r.cost or 0.0 for r in results),
        "reasked": sum(r.mode == "reasked" for r in results),
        "answers": [r.text for r in results],
        "seconds": elapsed,
    }


def windowed(upstream: Upstream, questions: list[str], size: int, workdir: Path) -> dict[str, Any]:
    """The gateway window: every question a concurrent caller (openai SDK) opting in."""
    cfg = config(upstream.url, size, str(workdir / f"w{size}.db"))
    cfg["batching"] = {**cfg["batching"], "enabled": True,
                       "window": {"enabled": True, "window_ms": 200}}  # fmt: skip
    gateway = Server(build_app(parse_config(cfg)), lifespan="on")
    before = upstream.calls()

    async def ask_all() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="x",
                                      max_retries=0, timeout=120) as client:  # fmt: skip
            return list(await asyncio.gather(*(
                client.chat.completions.create(
                    model=MODEL, extra_headers={"x-thrifty-batch": "window"},
                    messages=[{"role": "system", "content": SYSTEM},
                              {"role": "user", "content": q}])
                for q in questions)))  # fmt: skip

    try:
        replies = asyncio.run(ask_all())
    finally:
        gateway.stop()
    usages = [r.usage for r in replies if r.usage]
    return {
        "calls": upstream.calls() - before,
        "input_tokens": sum(u.prompt_tokens for u in usages),
        "output_tokens": sum(u.completion_tokens for u in usages),
        "answers": [r.choices[0].message.content for r in replies],
    }


def compare(answers: list[Any], truth: list[str]) -> dict[str, float]:
    right = sum(a == t for a, t in zip(answers, truth, strict=True))
    missing = sum(a is None for a in answers)
    n = len(truth)
    return {"right": right / n, "wrong": (n - right - missing) / n, "missing": missing / n}


def run(data: Path, limit: int) -> dict[str, Any]:
    questions = load_questions(data, limit)
    workdir = Path(tempfile.mkdtemp(prefix="bench-batching-"))
    upstream = Upstream(UpstreamOptions())
    try:
        base = individually(upstream.url, questions)
        price = PriceCatalogue.default().lookup(MODEL, provider_hint="openai")
        assert price is not None
        usage = Usage(input_tokens=base["input_tokens"], output_tokens=base["output_tokens"])
        base["cost"] = cost(usage, price).total
        sizes = {}
        for size in SIZES:
            result = packed(upstream, questions, size, workdir)
            result.update(compare(result.pop("answers"), base["answers"]))
            sizes[str(size)] = result
        window = windowed(upstream, questions, 10, workdir)
        window.update(compare(window.pop("answers"), base["answers"]))
    finally:
        upstream.stop()
    faults = {}
    for fault in FAULTS:
        for face, measure in (("library", packed), ("window", windowed)):
            faulty = Upstream(UpstreamOptions(model_faults={MODEL: fault}))
            try:
                result = measure(faulty, questions, 10, workdir)
            finally:
                faulty.stop()
            result.update(compare(result.pop("answers"), base["answers"]))
            faults[f"{fault} ({face})"] = result
    base.pop("answers")
    return {"questions": len(questions), "model": MODEL,
            "system_prompt_tokens": count_text(SYSTEM, MODEL).tokens,
            "baseline": base, "sizes": sizes, "window": window,
            "faults": faults}  # fmt: skip


def write(result: dict[str, Any]) -> Path:
    stem = result_stem("batching")
    base = result["baseline"]
    lines = [
        "# Prompt packing (batching)",
        "",
        f"{result['questions']} short real questions (≤ {MAX_QUESTION_TOKENS} tokens; "
        "vicuna/mt-bench first turns, arena_bench_v1), one shared system prompt of "
        f"{result['system_prompt_tokens']} tokens, model `{result['model']}` on the test "
        "upstream. Baseline: the same questions one call each, same run. Input and output "
        "tokens are the upstream's own usage figures, summed.",
        "",
        "| batch size | calls | calls saved | input tokens | input saved | output tokens "
        "| output vs baseline | cost vs baseline | re-asked | right | wrong |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| 1 (baseline) | {base['calls']} | – | {base['input_tokens']} | – | "
        f"{base['output_tokens']} | 1.00× | 1.00× (${base['cost']:.5f}) | – | 100% | 0% |",
    ]
    for size, r in result["sizes"].items():
        lines.append(
            f"| {size} | {r['calls']} | {1 - r['calls'] / base['calls']:.0%} | "
            f"{r['input_tokens']} | {1 - r['input_tokens'] / base['input_tokens']:.0%} | "
            f"{r['output_tokens']} | {r['output_tokens'] / base['output_tokens']:.2f}× | "
            f"{r['cost'] / base['cost']:.2f}× | {r['reasked']} | "
            f"{r['right']:.0%} | {r['wrong']:.0%} |"
        )
    w = result["window"]
    lines += [
        "",
        f"Gateway window (200 ms, at most 10 per call): all {result['questions']} questions "
        "as concurrent callers through `thrifty serve`'s app with the openai SDK and "
        f"`x-thrifty-batch: window`: {w['calls']} upstream calls "
        f"({1 - w['calls'] / base['calls']:.0%} saved), input tokens "
        f"{1 - w['input_tokens'] / base['input_tokens']:.0%} saved, answers right "
        f"{w['right']:.0%}, wrong {w['wrong']:.0%}. (How many share a call depends on "
        "arrival times; this row is one run.)",
        "",
        "Injected faults on every packed call (at most 10 per call): bad items must be "
        "re-asked alone, never given to the wrong caller.",
        "",
        "| fault (face) | calls | right | wrong | missing |",
        "|---|---|---|---|---|",
    ]
    for fault, r in result["faults"].items():
        lines.append(
            f"| {fault} | {r['calls']} | {r['right']:.0%} | {r['wrong']:.0%} | {r['missing']:.0%} |"
        )
    lines += [
        "",
        "Output tokens grow slightly: each answer carries its label (`[n|nonce]`). The input "
        "saving comes from sending the shared system prompt once per call instead of once "
        "per question, minus the packing instructions and labels.",
        "",
        f"Python {platform.python_version()}, {platform.machine()}; "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}.",
    ]
    return write_results(stem, result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    if not args.data.exists():
        args.data = Path("/work/shared/data")
    path = write(run(args.data, args.questions))
    sys.stdout.write(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
