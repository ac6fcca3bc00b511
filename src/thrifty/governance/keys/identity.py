"""Who is calling: the identity admission resolves a presented key to.

A :class:`Caller` is built once per request (or cached per key) and carries everything
later steps need without another lookup: the ledger's key/team/tags, the models the key
may use, its technique overrides, its own budgets and rate limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from thrifty.governance.keys.spec import OVERRIDABLE

__all__ = ["ANONYMOUS", "Caller", "KeyBudget", "Overrides", "tag_label"]


class Overrides:
    """Per-key switches of the techniques in :data:`OVERRIDABLE`, by name; a technique not
    named (or None) keeps the config's setting.

    Hashable and immutable on purpose: the runtime builds and caches one pipeline per
    distinct set. ``Overrides(**stored_json)`` reads what :meth:`as_dict` wrote.
    """

    __slots__ = ("_switches",)

    def __init__(self, **switches: bool | None) -> None:
        unknown = sorted(set(switches) - set(OVERRIDABLE))
        if unknown:
            raise TypeError(f"Overrides: no per-key switch named {', '.join(unknown)}")
        on_off = ((name, switches.get(name)) for name in OVERRIDABLE)
        self._switches: tuple[tuple[str, bool], ...] = tuple(
            (name, value) for name, value in on_off if value is not None
        )

    @property
    def empty(self) -> bool:
        return not self._switches

    def as_dict(self) -> dict[str, bool]:
        """The switches that are set, in :data:`OVERRIDABLE` order."""
        return dict(self._switches)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Overrides) and self._switches == other._switches

    def __hash__(self) -> int:
        return hash(self._switches)

    def __repr__(self) -> str:
        return f"Overrides({', '.join(f'{n}={v}' for n, v in self._switches)})"


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
