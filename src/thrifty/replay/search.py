"""What ``thrifty tune`` may change: each technique registers its search space here.

A search space looks at the raw config (as written, before ``${ENV}`` interpolation) and
the training records, fits what its technique learns (writing files under ``workdir``),
and returns candidate patches: small dicts deep-merged into that config. Only enabled
techniques contribute; the candidates of several techniques are combined.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thrifty.config.schema import ThriftyConfig
from thrifty.recordings.dataset import ReplayRecord


@dataclass(frozen=True)
class Candidate:
    label: str
    patch: dict[str, Any] = field(default_factory=dict)


SearchSpace = Callable[
    [Mapping[str, Any], ThriftyConfig, Sequence[ReplayRecord], Path], list[Candidate]
]

_SPACES: dict[str, SearchSpace] = {}


def register_search_space(technique: str, space: SearchSpace) -> None:
    _SPACES[technique] = space


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
) -> list[Candidate]:
    """The product of every enabled technique's candidates, plus the config as written.

    More than ``limit`` combinations are subsampled (deterministically, by ``seed``).
    """
    _load_spaces()
    spaces = [
        space(raw, config, train, workdir / technique)
        for technique, space in sorted(_SPACES.items())
        if enabled(raw, technique)
    ]
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


def _load_spaces() -> None:
    """Import the techniques' search spaces (each registers itself)."""
    import thrifty.cascade.search
    import thrifty.routing.search  # noqa: F401
