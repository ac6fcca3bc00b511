"""What ``replay``, ``tune`` and ``demo`` share: reading datasets and raw configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from thrifty.errors import ConfigError
from thrifty.recordings.dataset import DatasetError, ReplayRecord, bundled_dataset, load_dataset

BUNDLED = {"arena-bench": "arena_bench_v1", "arena_bench_v1": "arena_bench_v1"}


def dataset_path(name: str) -> Path:
    """A file path, or the name of a dataset shipped with Thrifty (``arena-bench``)."""
    if name in BUNDLED and not Path(name).exists():
        return bundled_dataset(BUNDLED[name])
    return Path(name)


def read_dataset(name: str, limit: int | None = None) -> list[ReplayRecord]:
    try:
        records = load_dataset(dataset_path(name))
    except DatasetError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read dataset {name}: {exc.strerror}") from None
    return records[:limit] if limit else records


def read_raw_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config as written (``${ENV}`` not yet interpolated): what tune patches and writes."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data
