"""What a technique's search space proposes to ``thrifty tune``: a labelled config patch.

Here, below every technique, so routing and cascade define their spaces next to their
own code without importing the tuner (which lists the spaces it knows and calls them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Candidate"]


@dataclass(frozen=True)
class Candidate:
    """``patch`` is deep-merged into the raw config (as written) to build the candidate."""

    label: str
    patch: dict[str, Any] = field(default_factory=dict)
