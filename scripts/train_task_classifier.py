"""Train the learned task classifier shipped as ``src/thrifty/routing/data/task_classifier.npz``.

Why: keyword rules mislabel most real prompts (see docs/embeddings.md); a linear softmax
over the shipped static embeddings is as cheap to run and learns from labelled prompts.

Data: ``shared/data/task_type_prompts`` (Apache-2.0): arena-hard v2.0 ``subcategory``
(coding/math/creative_writing) and the first turn of MT-Bench and Vicuna-bench questions,
their ``category`` mapped to our labels by ``LABEL_MAP``. arena-hard v0.1 is not used (its
labels are topic clusters, not task types). There is no summarization or translation data,
so the model learns five labels and the runtime lets the rules decide those two.

Method (numpy only, deterministic): split 75/25 stratified by (source, label) with seed 0;
features = embedding, standardised with the training mean/std; multinomial logistic
regression, class-balanced cross-entropy + L2, full-batch gradient descent (Adam). The L2
strength is chosen by 5-fold CV on the training rows only; the held-out rows are scored
once, at the end, for both the rule classifier and the model. The final weights are fitted
on the training rows only, so the reported held-out numbers are those of the shipped model.

Run (from the repo root, in the project venv; needs no network)::

    .venv/bin/python scripts/train_task_classifier.py [--data DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from thrifty.embeddings import get_embedder
from thrifty.routing.tasks import TASKS, WEIGHTS_PATH, LearnedTaskClassifier, RuleTaskClassifier

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "task_type_prompts"
SEED = 0
TEST_FRACTION = 0.25
L2_GRID = (1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
LABEL_MAP = {
    # arena-hard v2.0 subcategory
    "coding": "code",
    "math": "math",
    "creative_writing": "creative",
    # MT-Bench / Vicuna-bench category
    "writing": "creative",
    "roleplay": "creative",
    "reasoning": "math",
    "extraction": "extraction",
    "stem": "chat",
    "humanities": "chat",
    "generic": "chat",
    "knowledge": "chat",
    "common-sense": "chat",
    "fermi": "chat",
    "counterfactual": "chat",
}


def load_rows(data: Path) -> list[tuple[str, str, str, str]]:
    """(row id, source, label, prompt) for every labelled prompt."""
    rows = []
    for line in (data / "arena_hard_v2.0_questions.jsonl").read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        r = json.loads(line)
        rows.append((r["uid"], "arena_hard_v2", LABEL_MAP[r["subcategory"]], r["prompt"]))
    for name, source in (("mt_bench", "mt_bench"), ("vicuna_bench", "vicuna_bench")):
        for line in (data / f"{name}_questions.jsonl").read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            r = json.loads(line)
            rid = f"{source}:{r['question_id']}"
            rows.append((rid, source, LABEL_MAP[r["category"]], r["turns"][0]))
    return rows


def stratified_split(strata: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for key in sorted(set(strata)):
        idx = np.array([i for i, s in enumerate(strata) if s == key])
        rng.shuffle(idx)
        n_test = round(len(idx) * TEST_FRACTION)
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.array(sorted(train)), np.array(sorted(test))


def fit(x: np.ndarray, y: np.ndarray, k: int, l2: float, steps: int = 1500) -> tuple:
    """Class-balanced softmax regression by full-batch Adam; returns (weights, bias)."""
    n, d = x.shape
    counts = np.bincount(y, minlength=k).astype(np.float64)
    sample_w = (n / (k * np.maximum(counts, 1)))[y]
    sample_w /= sample_w.sum()
    onehot = np.eye(k)[y]
    w, b = np.zeros((d, k)), np.zeros(k)
    m_w, v_w, m_b, v_b = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    lr, beta1, beta2 = 0.05, 0.9, 0.999
    for t in range(1, steps + 1):
        logits = x @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * sample_w[:, None]
        g_w, g_b = x.T @ g + l2 * w, g.sum(axis=0)
        for param, grad, m, v in ((w, g_w, m_w, v_w), (b, g_b, m_b, v_b)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad**2
            param -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + 1e-8)
    return w, b


def predict(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (x @ w + b).argmax(axis=1)


def choose_l2(x: np.ndarray, y: np.ndarray, k: int, strata: list[str]) -> tuple[float, dict]:
    """5-fold CV on the training rows only; picks the L2 with the best accuracy."""
    rng = np.random.default_rng(SEED + 1)
    fold = np.zeros(len(y), dtype=int)
    for key in sorted(set(strata)):
        idx = np.array([i for i, s in enumerate(strata) if s == key])
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % 5
    results = {}
    for l2 in L2_GRID:
        preds = np.zeros(len(y), dtype=int)
        for f in range(5):
            tr, va = fold != f, fold == f
            mean, scale = x[tr].mean(0), x[tr].std(0) + 1e-6
            w, b = fit((x[tr] - mean) / scale, y[tr], k, l2)
            preds[va] = predict((x[va] - mean) / scale, w, b)
        results[l2] = round(float((preds == y).mean()), 4)
    best = max(results, key=lambda l2: (results[l2], l2))
    return best, results


def report(name: str, y: list[str], pred: list[str]) -> dict:
    """Accuracy, per-label recall and the confusion pairs, printed and returned."""
    acc = float(np.mean([a == b for a, b in zip(y, pred, strict=True)]))
    labels = [t for t in TASKS if t in set(y) | set(pred)]
    recall = {t: f"{sum(p == t for g, p in zip(y, pred, strict=True) if g == t)}/{y.count(t)}"
              for t in labels if t in y}  # fmt: skip
    confusion = Counter(f"{g}→{p}" for g, p in zip(y, pred, strict=True) if g != p)
    right = sum(a == b for a, b in zip(y, pred, strict=True))
    print(f"{name}: held-out accuracy {acc:.3f} ({right}/{len(y)})")
    print(f"  recall per true label: {recall}")
    print(f"  confusions: {dict(confusion.most_common())}")
    return {"accuracy": round(acc, 4), "recall": recall, "confusions": dict(confusion)}


def repeated_estimate(
    x: np.ndarray,
    y: np.ndarray,
    gold: list[str],
    texts: list[str],
    strata: list[str],
    k: int,
    repeats: int,
) -> None:
    """Whole procedure (CV for L2, fit, score) on fresh splits: how much the number moves."""
    rules = RuleTaskClassifier()
    rule_tasks = [rules.classify(t).task for t in texts]
    accs: dict[str, list[float]] = {"rules": [], "model": []}
    for seed in range(SEED + 100, SEED + 100 + repeats):
        train, test = stratified_split(strata, seed)
        l2, _ = choose_l2(x[train], y[train], k, [strata[i] for i in train])
        mean, scale = x[train].mean(0), x[train].std(0) + 1e-6
        w, b = fit((x[train] - mean) / scale, y[train], k, l2)
        pred = predict((x[test] - mean) / scale, w, b)
        accs["model"].append(float((pred == y[test]).mean()))
        accs["rules"].append(float(np.mean([rule_tasks[i] == gold[i] for i in test])))
    for name, values in accs.items():
        print(f"repeated splits ({repeats}), {name}: mean accuracy {np.mean(values):.3f} "
              f"(min {min(values):.3f}, max {max(values):.3f})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--repeats", type=int, default=0, help="extra random splits to report")
    args = parser.parse_args(argv)

    rows = load_rows(args.data)
    ids, sources, gold, texts = (list(c) for c in zip(*rows, strict=True))
    labels = tuple(t for t in TASKS if t in set(gold))
    y = np.array([labels.index(g) for g in gold])
    strata = [f"{s}/{g}" for s, g in zip(sources, gold, strict=True)]
    train, test = stratified_split(strata, SEED)
    print(f"{len(rows)} rows, labels {dict(Counter(gold))}; train {len(train)}, test {len(test)}")

    x = get_embedder().embed(texts).astype(np.float64)
    l2, cv = choose_l2(x[train], y[train], len(labels), [strata[i] for i in train])
    print(f"CV accuracy by L2 (train rows only): {cv} → {l2}")
    mean, scale = x[train].mean(0), x[train].std(0) + 1e-6
    w, b = fit((x[train] - mean) / scale, y[train], len(labels), l2)

    meta = {
        "data": "shared/data/task_type_prompts: arena-hard v2.0 + MT-Bench/Vicuna turn 1",
        "label_map": LABEL_MAP,
        "seed": SEED,
        "l2": l2,
        "train_rows": len(train),
        "test_ids": [ids[i] for i in test],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save(meta: dict) -> None:
        np.savez_compressed(
            args.out, labels=np.array(labels), mean=mean.astype(np.float32),
            scale=scale.astype(np.float32), weights=w.astype(np.float32),
            bias=b.astype(np.float32), meta=np.array(json.dumps(meta)),
        )  # fmt: skip

    save(meta)
    # Score the held-out rows once, through the runtime classes (what ships is what's scored).
    held_texts, held_gold = [texts[i] for i in test], [gold[i] for i in test]
    rules = RuleTaskClassifier()
    rule_pred = [rules.classify(t).task for t in held_texts]
    learned = LearnedTaskClassifier(args.out)
    model_pred = [p.task for p in learned.classify_many(held_texts)]
    meta["held_out"] = {
        "rules": report("rules", held_gold, rule_pred),
        "learned": report("learned (model + rule override)", held_gold, model_pred),
    }
    save(meta)
    if args.repeats:  # model only (no rule override): these labels have no rule-only rows
        repeated_estimate(x, y, gold, texts, strata, len(labels), args.repeats)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} B)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
