"""What ``thrifty tune`` may change: the search spaces it knows, listed here.

A search space looks at its technique's raw config section (as written, before
``${ENV}`` interpolation) and the training records, fits what its technique learns
(writing files under ``workdir``), and returns candidate patches: small dicts deep-merged
into that config. Each space lives next to its technique (``routing/search.py``,
``cascade/search.py``); this module adapts the config to what each needs. Only enabled
techniques contribute; the candidates of several techniques are combined.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from thrifty.cascade.search import cascade_space
from thrifty.config.schema import ThriftyConfig
from thrifty.recordings.candidates import Candidate
from thrifty.recordings.dataset import ReplayRecord
from thrifty.registry import ModelRegistry
from thrifty.routing.search import routing_space

__all__ = ["SPACES", "Candidate", "SearchSpace", "candidates_for", "deep_merge", "enabled"]

Progress = Callable[[str], None]
SearchSpace = Callable[
    [Mapping[str, Any], ThriftyConfig, Sequence[ReplayRecord], Path, float | None, Progress],
    list[Candidate],
]


def _quiet(message: str) -> None:
    pass


def _routing(
    raw: Mapping[str, Any],
    config: ThriftyConfig,
    train: Sequence[ReplayRecord],
    workdir: Path,
    target: float | None,
    progress: Progress,
) -> list[Candidate]:
    registry = ModelRegistry.from_config(config)
    baseline = config.baseline_model or config.default_model
    found = routing_space(
        raw.get("routing") or {}, registry, baseline, train, workdir, target, progress
    )
    # the tuner chooses the share (it mixes a candidate with the reference): each
    # candidate starts unmixed, whatever share the config being tuned was written with
    return [Candidate(c.label, deep_merge(c.patch, {"routing": {"share": 1.0}})) for c in found]


def _cascade(
    raw: Mapping[str, Any],
    config: ThriftyConfig,
    train: Sequence[ReplayRecord],
    workdir: Path,
    target: float | None,
    progress: Progress,
) -> list[Candidate]:
    return cascade_space(raw.get("cascade") or {}, train, workdir, progress)


#: Every search space the tuner knows, by the config section that switches it on.
SPACES: dict[str, SearchSpace] = {"cascade": _cascade, "routing": _routing}


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``patch`` merged in (dicts merge, anything else replaces)."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def enabled(raw: Mapping[str, Any], technique: str) -> bool:
    section = raw.get(technique)
    return isinstance(section, Mapping) and bool(section.get("enabled"))


def candidates_for(
    raw: Mapping[str, Any],
    config: ThriftyConfig,
    train: Sequence[ReplayRecord],
    workdir: Path,
    limit: int = 200,
    seed: int = 0,
    target: float | None = None,
    progress: Progress = _quiet,
) -> list[Candidate]:
    """The product of every enabled technique's candidates, plus the config as written.

    More than ``limit`` combinations are subsampled (deterministically, by ``seed``).
    """
    spaces = [
        space(raw, config, train, workdir / technique, target, progress)
        for technique, space in sorted(SPACES.items())
        if enabled(raw, technique)
    ]
    spaces = [space for space in spaces if space]  # a space with nothing to try drops out
    combos: list[Candidate] = [Candidate("as configured")]
    for parts in itertools.product(*spaces) if spaces else ():
        patch: dict[str, Any] = {}
        for part in parts:
            patch = deep_merge(patch, part.patch)
        combos.append(Candidate(", ".join(p.label for p in parts), patch))
    if len(combos) > limit:
        rest = random.Random(seed).sample(combos[1:], limit - 1)
        combos = [combos[0], *rest]
    return combos
