"""Who is calling: the identity admission resolves a presented key to.

A :class:`Caller` is built once per request (or cached per key) and carries everything
later steps need without another lookup: the ledger's key/team/tags, the models the key
may use, its technique overrides, its own budgets and rate limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ANONYMOUS", "Caller", "KeyBudget", "Overrides", "tag_label"]


@dataclass(frozen=True, slots=True)
class Overrides:
    """Per-key switches of the techniques; None keeps the config's setting.

    Hashable on purpose: the runtime builds and caches one pipeline per distinct set.
    """

    routing: bool | None = None
    cascade: bool | None = None
    cache: bool | None = None

    @property
    def empty(self) -> bool:
        return self.routing is None and self.cascade is None and self.cache is None

    def as_dict(self) -> dict[str, bool]:
        return {
            name: value
            for name, value in (
                ("routing", self.routing),
                ("cascade", self.cascade),
                ("cache", self.cache),
            )
            if value is not None
        }


@dataclass(frozen=True, slots=True)
class KeyBudget:
    """A key's own cap (scope ``key:<id>``)."""

    period: Literal["day", "month", "lifetime"]
    limit_usd: float


@dataclass(frozen=True, slots=True)
class Caller:
    """The resolved identity of a request.

    ``key_id`` is None only when auth is off and no key was sent. ``models`` None means
    every model; otherwise the names the key may ask for (``auto`` included only if
    listed, or if every model auto can pick is listed). ``source`` is ``config`` (a key
    from ``auth.keys``), ``virtual`` (from the key store) or ``anonymous``.
    """

    key_id: str | None
    source: Literal["config", "virtual", "anonymous"] = "anonymous"
    owner: str | None = None
    team: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    models: frozenset[str] | None = None
    overrides: Overrides = field(default_factory=Overrides)
    budgets: tuple[KeyBudget, ...] = ()
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models


ANONYMOUS = Caller(key_id=None)


def tag_label(name: str, value: str) -> str:
    """How a tag is named in a budget scope: ``env=prod``, or ``prod`` for a bare tag."""
    return name if value == "true" else f"{name}={value}"
