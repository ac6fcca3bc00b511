"""What the ledger stores: one :class:`RequestRecord` per request, one :class:`AttemptRecord`
per model call made while serving it.

Plain slotted dataclasses (no pydantic): a record is built on the hot path of every request,
so it must be cheap to create; validation happens where the values come from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from thrifty.usage import Usage

__all__ = ["AttemptRecord", "RequestRecord", "ShadowAnswer", "attempts_cost"]


@dataclass(slots=True, kw_only=True)
class AttemptRecord:
    """One call to a model: the caller's own, a retry, a fallback, or the pipeline's overhead.

    ``purpose`` says why the call was made ("main", "retry", "fallback", "judge", "cascade",
    "summarise", "embed", …). ``cost`` is None when the call used tokens we have no price for:
    an unknown price is never counted as $0.
    """

    request_id: str
    seq: int
    ts: float
    purpose: str
    model: str
    upstream_model: str
    provider: str
    status: str  # "ok" | "error"
    http_status: int | None = None
    error: str | None = None
    usage: Usage | None = None
    cost: float | None = None
    latency_ms: float = 0.0

    @property
    def unpriced(self) -> bool:
        """Tokens were used but their cost is unknown."""
        return self.usage is not None and self.cost is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttemptRecord:
        values = dict(data)
        usage = values.get("usage")
        values["usage"] = Usage(**usage) if usage is not None else None
        return cls(**values)


@dataclass(slots=True, kw_only=True)
class ShadowAnswer:
    """One candidate model's answer to a shadowed request, and its grade.

    ``request_id`` is the *served* request's id. ``quality`` is in [0, 1] on the same
    scale as ``served_quality`` (the served answer's), None when it could not be graded;
    ``grader`` says how (``absolute``, ``pairwise``, ``choice``, ``numeric``, ``json``).
    ``cost`` is the candidate call's own cost (None: unpriced); judge calls are attempts
    of the shadow record. ``status`` is "ok" or "error" (then ``error`` says why).
    """

    request_id: str
    model: str
    served_model: str
    status: str
    answer: str | None = None
    output_tokens: int | None = None
    cost: float | None = None
    quality: float | None = None
    served_quality: float | None = None
    grader: str | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True, kw_only=True)
class RequestRecord:
    """One request as the caller saw it, with every attempt made to answer it.

    ``usage`` is the returned answer's usage; ``cost`` is the *actual* cost, the sum of all
    priced attempts (failed and overhead calls included); ``unpriced`` is true when any attempt
    used tokens without a known price, so ``cost`` is a lower bound; ``estimated`` when part
    of ``cost`` rests on token counts Thrifty made itself (no usage from the upstream: a
    timeout, a cut stream). ``baseline_cost`` is what the request would have cost sent as-is
    to ``baseline_model`` (docs/ledger.md); None when unknown, and then ``savings`` is empty.
    ``savings`` splits ``baseline_cost - cost`` by cause (``pipeline/attribution.py``).
    ``key_id`` is a short hash of the caller's key, never the key itself; ``team`` and
    ``tags`` come from the caller's virtual key (tags merged with the request's). ``body``,
    ``answer`` and ``answer_model`` (the upstream model id that answered) are filled only
    when ``ledger.capture_bodies`` is on, so traffic can be replayed later.
    ``shadows`` is filled only on a shadow evaluation's own record (``endpoint ==
    "shadow"``): the candidates' graded answers to the request it shadowed.
    """

    request_id: str
    ts: float
    endpoint: str  # "chat.completions" | "embeddings" | "shadow"
    requested_model: str
    status: str  # "ok" | "error" | "cancelled"
    http_status: int
    key_id: str | None = None
    team: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    provider: str | None = None
    stream: bool = False
    error_type: str | None = None
    error_message: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    unpriced: bool = False
    estimated: bool = False
    baseline_model: str | None = None
    baseline_cost: float | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    techniques: dict[str, dict[str, Any]] = field(default_factory=dict)
    savings: dict[str, float] = field(default_factory=dict)
    attempts: list[AttemptRecord] = field(default_factory=list)
    body: dict[str, Any] | None = None
    answer: str | None = None
    answer_model: str | None = None
    shadows: list[ShadowAnswer] = field(default_factory=list)
    api: str | None = None  # the API the client spoke when not ``endpoint`` (a dialect)

    @property
    def savings_total(self) -> float | None:
        """Baseline minus actual cost; None when the baseline is unknown."""
        if self.baseline_cost is None:
            return None
        return self.baseline_cost - self.cost

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (nested usage and attempts as dicts)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        """Inverse of :meth:`to_dict`, e.g. to re-import a ``.failed.jsonl`` fallback file."""
        values = dict(data)
        values["usage"] = Usage(**(values.get("usage") or {}))
        values["attempts"] = [AttemptRecord.from_dict(a) for a in values.get("attempts") or []]
        values["shadows"] = [ShadowAnswer(**s) for s in values.get("shadows") or []]
        return cls(**values)


def attempts_cost(attempts: Iterable[AttemptRecord]) -> tuple[float, bool]:
    """Actual cost of a request and whether part of it is unpriced.

    Sums the priced attempts; an attempt with tokens but no price sets the flag instead of
    adding $0, so callers fill ``RequestRecord.cost`` and ``.unpriced`` from one place.
    """
    total = 0.0
    unpriced = False
    for attempt in attempts:
        if attempt.cost is not None:
            total += attempt.cost
        elif attempt.usage is not None:
            unpriced = True
    return total, unpriced
