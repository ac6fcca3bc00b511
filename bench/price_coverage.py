"""What the price catalogue can price, and how far off the old rules were (issue 15, items 1, 2, 6).

Reads the bundled LiteLLM catalogue and real prompts and answers from ``shared/data``.
Figures:

* chat entries listed at $0/$0 (booked as free before; unknown now);
* entries with long-context tiers (``*_above_<N>k_tokens``): how many now carry tiers, and
  how low the old base-rate pricing booked a call whose prompt is 1.5x the threshold
  (output 1k tokens), median and worst;
* entries priced only by ``tiered_pricing`` ranges: usable before (none) and now;
* bare ``gpt-4`` counted with o200k (the old rule) against cl100k (its tokenizer) on real
  texts (``shared/data``: arena_bench_v1 questions and GPT-4 reference answers, Arena-Hard
  v2.0 prompts, which include non-Latin ones): relative error, all texts and the texts
  with more than 30 % non-ASCII characters.

Writes ``bench/results/<date>-price-coverage.{md,json}``. Usage::

    python -m bench.price_coverage [--data DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

from bench.reporting import result_stem, write_results
from thrifty.pricing import ModelPrice, PriceCatalogue, cost
from thrifty.tokens.counter import _get_encoding
from thrifty.usage import Usage

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOURCES = (
    ("arena_bench_v1/questions.jsonl", "prompt"),
    ("arena_bench_v1/reference_answers_gpt-4.jsonl", "answer"),
    ("task_type_prompts/arena_hard_v2.0_questions.jsonl", "prompt"),
)


def zero_chat(catalogue: PriceCatalogue) -> dict[str, Any]:
    raw = catalogue.raw()
    names = [
        k for k, v in raw.items()
        if isinstance(v, dict) and v.get("mode") == "chat"
        and v.get("input_cost_per_token") == 0 and v.get("output_cost_per_token") == 0
    ]  # fmt: skip
    still_free = [k for k in names if (p := catalogue.lookup(k)) is not None and p.all_zero]
    return {"chat_entries_at_zero": len(names), "booked_free_now": len(still_free)}


def long_context(catalogue: PriceCatalogue) -> dict[str, Any]:
    raw = catalogue.raw()
    with_keys = [
        k for k, v in raw.items()
        if isinstance(v, dict) and any("_above_" in f and f.endswith("k_tokens") for f in v)
    ]  # fmt: skip
    low: list[float] = []
    tiered = 0
    for name in with_keys:
        price = catalogue.lookup(name)
        if price is None or price.name != name or not price.tiers:
            continue
        tiered += 1
        above = price.tiers[0].above
        usage = Usage(input_tokens=above * 3 // 2, output_tokens=1_000)
        new = cost(usage, price).total
        old = cost(usage, _base_only(price)).total
        if new > 0:
            low.append(1 - old / new)
    return {
        "entries_with_tier_keys": len(with_keys),
        "priced_with_tiers_now": tiered,
        "old_booked_low_median": statistics.median(low) if low else None,
        "old_booked_low_max": max(low) if low else None,
        "gemini_2_5_pro_300k_low": _gemini(catalogue),
    }


def _base_only(price: ModelPrice) -> ModelPrice:
    from dataclasses import replace

    return replace(price, tiers=())


def _gemini(catalogue: PriceCatalogue) -> float | None:
    price = catalogue.lookup("gemini-2.5-pro")
    if price is None:
        return None
    usage = Usage(input_tokens=300_000, output_tokens=1_000)
    new = cost(usage, price).total
    return 1 - cost(usage, _base_only(price)).total / new


def range_only(catalogue: PriceCatalogue) -> dict[str, Any]:
    raw = catalogue.raw()
    names = [
        k for k, v in raw.items()
        if isinstance(v, dict) and v.get("mode") == "chat" and "tiered_pricing" in v
        and v.get("input_cost_per_token") is None
    ]  # fmt: skip
    return {"range_only_chat_entries": len(names),
            "usable_now": sum(catalogue.lookup(k) is not None for k in names)}  # fmt: skip


def tokenizer_error(data: Path) -> dict[str, Any]:
    texts: list[str] = []
    for file, field in SOURCES:
        with (data / file).open(encoding="utf-8") as handle:
            texts += [json.loads(line)[field] for line in handle if line.strip()]
    cl100k, o200k = _get_encoding("cl100k_base"), _get_encoding("o200k_base")

    def error(subset: list[str]) -> dict[str, Any]:
        true = sum(len(cl100k.encode_ordinary(t)) for t in subset)
        old = sum(len(o200k.encode_ordinary(t)) for t in subset)
        per_text = [
            len(o200k.encode_ordinary(t)) / max(1, len(cl100k.encode_ordinary(t))) - 1
            for t in subset
        ]
        return {"texts": len(subset), "cl100k_tokens": true, "o200k_tokens": old,
                "total_error": old / true - 1 if true else None,
                "worst_text_error": min(per_text) if per_text else None}  # fmt: skip

    non_latin = [t for t in texts if sum(ord(c) > 127 for c in t) > 0.3 * max(1, len(t))]
    return {"all": error(texts), "non_ascii_over_30pct": error(non_latin)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    catalogue = PriceCatalogue.bundled()
    result = {
        "zero_priced": zero_chat(catalogue),
        "long_context": long_context(catalogue),
        "range_only": range_only(catalogue),
        "gpt4_tokenizer": tokenizer_error(args.data),
    }
    lc, tok = result["long_context"], result["gpt4_tokenizer"]

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    zero, ranges, every, foreign = (
        result["zero_priced"],
        result["range_only"],
        tok["all"],
        tok["non_ascii_over_30pct"],
    )
    rows = [
        ("chat entries listed at $0/$0 (booked free before)", zero["chat_entries_at_zero"]),
        ("of those, booked free now", zero["booked_free_now"]),
        ("entries with long-context tier keys", lc["entries_with_tier_keys"]),
        ("priced with tiers now (own entry, not $0)", lc["priced_with_tiers_now"]),
        (
            "old base-rate booking too low at 1.5x the threshold, median / worst",
            f"{pct(lc['old_booked_low_median'])} / {pct(lc['old_booked_low_max'])}",
        ),
        (
            "gemini-2.5-pro, 300k prompt + 1k answer, old booking too low by",
            pct(lc["gemini_2_5_pro_300k_low"]),
        ),
        (
            "chat entries priced only by ranges, usable now (before: 0)",
            f"{ranges['usable_now']} of {ranges['range_only_chat_entries']}",
        ),
        (
            f"bare gpt-4 counted with o200k vs cl100k, arena_bench_v1 questions + GPT-4 "
            f"answers + Arena-Hard v2.0 prompts ({every['texts']} texts)",
            f"{pct(every['total_error'])} total, worst text {pct(every['worst_text_error'])}",
        ),
        (
            f"the same, texts >30% non-ASCII ({foreign['texts']})",
            f"{pct(foreign['total_error'])} total, worst text {pct(foreign['worst_text_error'])}",
        ),
    ]
    lines = [f"# Price coverage ({dt.date.today()})", "", "| what | figure |", "|---|---|"]
    lines += [f"| {what} | {figure} |" for what, figure in rows]
    report = "\n".join(lines) + "\n"
    write_results(result_stem("price-coverage"), result, report)
    print(report)


if __name__ == "__main__":
    main()
