"""Semantic cache: false hits and recall with and without guards, threshold calibration, speed.

Sources (``shared/data``; see each folder's README, and ``bench/data/guard_pairs.jsonl``):

* ``gptcache``: GPTCache's 999 (origin, similar) pairs. Positive = similar vs its origin;
  negative = similar vs the nearest *other* origin by embedding (different text).
* ``paws``: PAWS-Wiki dev + test (16,000 pairs), label 1 = same meaning, 0 = different.
* ``guard_pairs``: our hand-written negation/number/unit/entity/order/antonym pairs plus
  paraphrases (its own ``split`` field).

Every source is split into a calibration half and a reported half (seed 0; guard_pairs by its
``split`` field). Thresholds for a 1% false-hit budget are picked on the pooled calibration
halves (guards on, guards off) and reported on the other halves. Also: GPTCache's own
retrieval benchmark (all origins stored, each similar queried, top-1), per-query embedding +
guard cost, and numpy top-1 search over 10k / 100k stored vectors. One core pinned.
Writes ``bench/results/<date>-semantic-cache.{md,json}``. Usage::

    python -m bench.semantic_cache [--data DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.embeddings import one_core

RESULTS = Path(__file__).parent / "results"
PAIRS = Path(__file__).parent / "data" / "guard_pairs.jsonl"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BUDGET = 0.01
FIXED = (0.85, 0.90, 0.95)
Pair = tuple[str, str, bool, str]  # (query, cached, same, kind)


def load(data: Path, embed: Any, rng: Any) -> dict[str, dict[str, list[Pair]]]:
    """{source: {"cal": pairs, "rep": pairs}}."""
    import numpy as np

    mock = json.loads((data / "gptcache_mock_pairs" / "mock_data.json").read_text("utf-8"))
    origins = [row["origin"] for row in mock]
    similars = [row["similar"] for row in mock]
    sims = embed(similars) @ embed(origins).T
    same_text = np.array(origins)[:, None] == np.array(origins)[None, :]
    sims_other = np.where(same_text, -np.inf, sims)
    gpt: list[list[Pair]] = []
    for i, query in enumerate(similars):
        j = int(np.argmax(sims_other[i]))
        gpt.append([(query, origins[i], True, "paraphrase"), (query, origins[j], False, "nearest")])
    half = set(rng.permutation(len(gpt))[: len(gpt) // 2].tolist())
    out = {
        "gptcache": {
            "cal": [p for i, two in enumerate(gpt) if i in half for p in two],
            "rep": [p for i, two in enumerate(gpt) if i not in half for p in two],
        }
    }
    paws: list[Pair] = []
    for name in ("dev.tsv", "test.tsv"):
        for line in (data / "paws_wiki" / name).read_text("utf-8").splitlines()[1:]:
            _, s1, s2, label = line.split("\t")
            paws.append((s1, s2, label == "1", "paws-" + label))
    half = set(rng.permutation(len(paws))[: len(paws) // 2].tolist())
    out["paws"] = {
        "cal": [p for i, p in enumerate(paws) if i in half],
        "rep": [p for i, p in enumerate(paws) if i not in half],
    }
    rows = [json.loads(line) for line in PAIRS.read_text("utf-8").splitlines() if line.strip()]
    out["guard_pairs"] = {
        key: [(r["a"], r["b"], r["same"], r["kind"]) for r in rows if r["split"] == split]
        for key, split in (("cal", "design"), ("rep", "report"))
    }
    return out


def score(pairs: list[Pair], embed: Any) -> dict[str, list[Any]]:
    """Similarity, and the first failing guard (default set and strict order) per pair."""
    import numpy as np

    from thrifty.cache.guards import DEFAULT_GUARDS, guard_verdict

    texts = sorted({t for q, c, _, _ in pairs for t in (q, c)})
    index = {t: i for i, t in enumerate(texts)}
    vecs = embed(texts)
    qi = np.array([index[q] for q, _, _, _ in pairs])
    ci = np.array([index[c] for _, c, _, _ in pairs])
    strict = tuple(g if g != "order" else "order_strict" for g in DEFAULT_GUARDS)
    return {
        "sim": np.einsum("ij,ij->i", vecs[qi], vecs[ci]).tolist(),
        "same": [s for _, _, s, _ in pairs],
        "kind": [k for _, _, _, k in pairs],
        "failed": [guard_verdict(q, c).failed for q, c, _, _ in pairs],
        "failed_strict": [guard_verdict(q, c, strict).failed for q, c, _, _ in pairs],
    }


def _ok(s: dict[str, list[Any]], mode: str) -> list[bool]:
    if mode == "off":
        return [True] * len(s["sim"])
    key = "failed" if mode == "on" else "failed_strict"
    return [f is None for f in s[key]]


def _cat(parts: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    return {k: [v for p in parts for v in p[k]] for k in parts[0]}


def accuracy(scored: dict[str, dict[str, dict[str, list[Any]]]]) -> dict[str, Any]:
    from thrifty.cache.calibrate import evaluate, pick_threshold

    cal = _cat([halves["cal"] for halves in scored.values()])
    rep_by = {name: halves["rep"] for name, halves in scored.items()}
    rep_by["overall"] = _cat(list(rep_by.values()))
    result: dict[str, Any] = {"chosen": {}, "reported": {}, "fixed": {}}
    for mode in ("on", "off", "strict"):
        choice = pick_threshold(cal["sim"], cal["same"], _ok(cal, mode), BUDGET)
        result["chosen"][mode] = choice._asdict()
        result["reported"][mode] = {
            name: evaluate(choice.threshold, s["sim"], s["same"], _ok(s, mode))
            for name, s in rep_by.items()
        }
        result["fixed"][mode] = {
            str(t): {n: evaluate(t, s["sim"], s["same"], _ok(s, mode)) for n, s in rep_by.items()}
            for t in FIXED
        }
    result["per_source"] = {}  # each source calibrated on its own half, reported on the other
    for name, halves in scored.items():
        c, r = halves["cal"], halves["rep"]
        for mode in ("on", "off"):
            choice = pick_threshold(c["sim"], c["same"], _ok(c, mode), BUDGET)
            result["per_source"][f"{name} guards {mode}"] = {
                "chosen": choice._asdict(),
                "reported": evaluate(choice.threshold, r["sim"], r["same"], _ok(r, mode)),
            }
    # which guard fired on the reported negatives that clear the guards-off threshold
    s, t = rep_by["overall"], result["chosen"]["on"]["threshold"]
    cand = [i for i, sim in enumerate(s["sim"]) if sim >= min(t, FIXED[0])]
    result["fired"] = {
        "threshold": min(t, FIXED[0]),
        "negatives": dict(Counter(str(s["failed"][i]) for i in cand if not s["same"][i])),
        "positives": dict(Counter(str(s["failed"][i]) for i in cand if s["same"][i])),
        "by_kind": {
            k: dict(Counter(str(s["failed"][i]) for i in cand if s["kind"][i] == k))
            for k in sorted(set(s["kind"]))
        },
    }
    return result


def retrieval(data: Path, embed: Any, thresholds: list[float]) -> dict[str, Any]:
    """GPTCache's own benchmark: store every origin, query every similar, serve top-1."""
    from thrifty.cache.guards import guard_verdict

    mock = json.loads((data / "gptcache_mock_pairs" / "mock_data.json").read_text("utf-8"))
    stored = sorted({row["origin"] for row in mock})
    sims = embed([row["similar"] for row in mock]) @ embed(stored).T
    top = sims.argmax(axis=1)
    out: dict[str, Any] = {}
    for t in thresholds:
        for guards in (True, False):
            right = wrong = 0
            for row, j, sim in zip(mock, top, sims.max(axis=1), strict=True):
                if sim >= t and (not guards or guard_verdict(row["similar"], stored[j]).ok):
                    right += stored[j] == row["origin"]
                    wrong += stored[j] != row["origin"]
            hits = right + wrong
            out[f"{t:.3f} guards {'on' if guards else 'off'}"] = {
                "queries": len(mock),
                "hits": hits,
                "wrong": wrong,
                "hit_rate": hits / len(mock),
                "false_hit_rate": wrong / hits if hits else 0.0,
            }
    return out


def speed(data: Path, emb: Any) -> dict[str, Any]:
    import numpy as np

    from thrifty.cache import guards

    mock = json.loads((data / "gptcache_mock_pairs" / "mock_data.json").read_text("utf-8"))
    embed_ms, guard_ms = [], []
    for row in mock:
        guards._parse.cache_clear()  # cold: both texts parsed, the worst case
        start = time.perf_counter()
        emb.embed_one(row["similar"])
        mid = time.perf_counter()
        guards.guard_verdict(row["similar"], row["origin"])
        end = time.perf_counter()
        embed_ms.append((mid - start) * 1000)
        guard_ms.append((end - mid) * 1000)
    sentences: list[str] = []
    for name in ("dev.tsv", "test.tsv"):
        for line in (data / "paws_wiki" / name).read_text("utf-8").splitlines()[1:]:
            sentences.extend(line.split("\t")[1:3])
    real = emb.embed(sorted(set(sentences))).astype(np.float32)
    rng = np.random.default_rng(0)
    queries = emb.embed([row["similar"] for row in mock[:300]]).astype(np.float32)
    search: dict[str, float] = {}
    for n in (10_000, 100_000):
        base = real[np.arange(n) % len(real)]
        noise = (
            rng.normal(0, 0.02, base.shape).astype(np.float32)
            * (np.arange(n) >= len(real))[:, None]
        )
        stored = base + noise
        stored /= np.linalg.norm(stored, axis=1, keepdims=True)
        times = []
        for q in queries:
            start = time.perf_counter()
            scores = stored @ q
            int(scores.argmax())
            times.append((time.perf_counter() - start) * 1000)
        search[str(n)] = statistics.median(times)
    return {
        "embed_ms": statistics.median(embed_ms),
        "guard_ms": statistics.median(guard_ms),
        "guard_p99_ms": sorted(guard_ms)[int(0.99 * (len(guard_ms) - 1))],
        "embed_plus_guard_ms": statistics.median(
            a + b for a, b in zip(embed_ms, guard_ms, strict=True)
        ),
        "real_vectors": len(real),
        "search_ms": search,
    }


def _row(name: str, e: dict[str, Any]) -> str:
    return (
        f"| {name} | {e['pairs']} | {e['positives']} | {e['hits']} | {e['false_hits']} "
        f"| {e['false_hit_rate']:.2%} | {e['recall']:.1%} |"
    )


def write(result: dict[str, Any]) -> Path:
    acc = result["accuracy"]
    cols = "| pairs | true pairs | hits | false hits | false-hit rate | recall |"
    head = f"| source {cols}\n|---|---|---|---|---|---|---|"
    lines = [
        f"# Semantic cache: guards and threshold ({result['date']}, {result['machine']})",
        "",
        "Reported halves only; thresholds picked on the calibration halves (pooled) for a "
        f"{BUDGET:.0%} false-hit budget. Hit = similarity ≥ threshold and guards pass.",
    ]
    names = {"on": "guards on (default)", "off": "guards off", "strict": "guards on, strict order"}
    for mode, label in names.items():
        c = acc["chosen"][mode]
        lines += [
            "",
            f"## {label}: threshold {c['threshold']:.4f} (calibration: false-hit rate "
            f"{c['false_hit_rate']:.2%}, recall {c['recall']:.1%}, {c['hits']} hits)",
            "",
            head,
        ]
        lines += [_row(n, e) for n, e in acc["reported"][mode].items()]
    lines += [
        "",
        "## Each source calibrated on its own calibration half",
        "",
        f"| source, guards | threshold | cal. false-hit rate | cal. recall {cols}",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in acc["per_source"].items():
        c = v["chosen"]
        lines.append(
            f"| {name} | {c['threshold']:.4f} | {c['false_hit_rate']:.2%} | {c['recall']:.1%} "
            + _row("", v["reported"])[3:]
        )
    lines += [
        "",
        "## Fixed thresholds (reported halves)",
        "",
        f"| threshold | guards | source {cols}",
    ]
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for mode in ("on", "off"):
        for t, by in acc["fixed"][mode].items():
            lines += [f"| {t} | {mode} " + _row(n, e) for n, e in by.items()]
    f = acc["fired"]
    lines += [
        "",
        f"## First failing guard, reported pairs with similarity ≥ {f['threshold']:.4f}",
        "",
        f"* negatives (would be false hits): {f['negatives']}",
        f"* positives (true pairs blocked when 'None' is absent): {f['positives']}",
        *(f"* kind `{k}`: {v}" for k, v in f["by_kind"].items()),
        "",
        "## GPTCache's own benchmark (all origins stored, every similar queried, top-1)",
        "",
        "| setting | queries | hits | wrong | hit rate | false-hit rate |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {v['queries']} | {v['hits']} | {v['wrong']} | {v['hit_rate']:.1%} "
        f"| {v['false_hit_rate']:.2%} |"
        for k, v in result["retrieval"].items()
    ]
    s = result["speed"]
    lines += [
        "",
        "## Speed (median per query, one core)",
        "",
        f"* embed_one: {s['embed_ms']:.3f} ms; guards (cold, both texts parsed): "
        f"{s['guard_ms']:.3f} ms (p99 {s['guard_p99_ms']:.3f}); "
        f"sum {s['embed_plus_guard_ms']:.3f} ms",
        "* numpy top-1 over stored vectors (float32, 256-d): "
        + ", ".join(f"{n}: {ms:.3f} ms" for n, ms in s["search_ms"].items()),
        f"  ({s['real_vectors']} real PAWS-sentence embeddings; beyond that, tiled copies "
        "plus Gaussian noise σ=0.02 per dimension, renormalised)",
        "",
    ]
    stem = RESULTS / f"{dt.date.today().isoformat()}-semantic-cache"
    stem.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return stem.with_suffix(".md")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    needed = [args.data / "gptcache_mock_pairs" / "mock_data.json", args.data / "paws_wiki"]
    if not all(p.exists() for p in needed):
        print(f"semantic-cache bench needs {needed[0]} and {needed[1]} (shared/data); not found")
        return 2
    one_core()
    import numpy as np

    from thrifty.embeddings import get_embedder

    emb = get_embedder()
    sources = load(args.data, emb.embed, np.random.default_rng(0))
    scored = {
        n: {h: score(p, emb.embed) for h, p in halves.items()} for n, halves in sources.items()
    }
    acc = accuracy(scored)
    chosen = sorted({acc["chosen"][m]["threshold"] for m in ("on", "off")} | set(FIXED))
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, 1 core pinned",
        "sizes": {n: {h: len(p) for h, p in halves.items()} for n, halves in sources.items()},
        "accuracy": acc,
        "retrieval": retrieval(args.data, emb.embed, [t for t in chosen if t <= 1.0]),
        "speed": speed(args.data, emb),
    }
    print(write(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
