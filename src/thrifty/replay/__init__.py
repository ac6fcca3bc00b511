"""Replay: run the real pipeline over recorded requests to measure savings and quality.

The dataset format lives in :mod:`thrifty.recordings.dataset` (see ``docs/replay-format.md``);
importers that build datasets from other sources live in :mod:`thrifty.replay.importers`.
"""

from __future__ import annotations

from thrifty.recordings.dataset import (
    DatasetError,
    RecordedAnswer,
    ReplayRecord,
    bundled_dataset,
    load_dataset,
    messages_key,
    write_dataset,
)

__all__ = [
    "DatasetError",
    "RecordedAnswer",
    "ReplayRecord",
    "bundled_dataset",
    "load_dataset",
    "messages_key",
    "write_dataset",
]
