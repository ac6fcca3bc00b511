"""``thrifty tune --embed-cache DIR`` keeps the prompt vectors: a repeat tune embeds
nothing again (each run is a fresh process, so nothing is remembered in memory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, write_dataset

MODELS = {"big": {"input": 10.0, "output": 30.0}, "small": {"input": 0.5, "output": 1.5}}


def _records(n: int) -> list[ReplayRecord]:
    out = []
    for i in range(n):
        hard = i % 3 == 0
        text = f"prove theorem {i} about integrals" if hard else f"what is the capital {i}"
        out.append(ReplayRecord(
            id=f"r{i}", messages=({"role": "user", "content": text},), params={}, tags={},
            answers={"big": RecordedAnswer(None, 1.0, 20),
                     "small": RecordedAnswer(None, 0.0 if hard else 1.0, 20)},
        ))  # fmt: skip
    return out


def _tune(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    dataset = tmp_path / "d.jsonl.gz"
    if not dataset.exists():
        write_dataset(_records(40), dataset)
        config = {
            "providers": {"p": {"base_url": "http://127.0.0.1:9/v1"}},
            "models": {name: {"provider": "p", "price": p} for name, p in MODELS.items()},
            "default_model": "big",
            "routing": {"enabled": True, "strategy": "tradeoff", "encoder": "static",
                        "prior": "none"},
        }  # fmt: skip
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    args = ["tune", "--dataset", str(dataset), "--config", str(tmp_path / "c.yaml"),
            "--out", str(tmp_path / "tuned.yaml"), "--folds", "2", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.run([sys.executable, "-m", "thrifty.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip


def _shards(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in directory.rglob("*.npz")
    }


@pytest.mark.slow
def test_a_repeat_tune_reuses_the_kept_vectors(tmp_path: Path) -> None:
    kept = tmp_path / "vectors"
    first = _tune(tmp_path, "--embed-cache", str(kept))
    assert first.returncode == 0, first.stderr
    shards = _shards(kept)
    assert shards and all(name.startswith("static/") for name in shards)
    tuned = (tmp_path / "tuned.yaml").read_text()
    second = _tune(tmp_path, "--embed-cache", str(kept))
    assert second.returncode == 0, second.stderr
    assert _shards(kept) == shards  # nothing embedded again, nothing rewritten
    assert (tmp_path / "tuned.yaml").read_text() == tuned  # the same vectors, the same fit


@pytest.mark.slow
def test_an_embed_cache_that_is_a_file_is_refused(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    done = _tune(tmp_path, "--embed-cache", str(not_a_dir))
    assert done.returncode == 2
    assert "--embed-cache" in done.stderr and "not a directory" in done.stderr
    assert "Traceback" not in done.stderr
