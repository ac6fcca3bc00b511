"""What a library call cost and what Thrifty decided, without a trip to the ledger.

The gateway tells its clients in ``x-thrifty-*`` response headers; the library attaches
the same facts to what it returns, as a :class:`CallInfo` in a ``thrifty`` attribute
(``reply.thrifty``; for a stream, ``stream.thrifty`` once the stream has ended). It is
not part of the OpenAI object's fields, so ``model_dump()`` and ``to_json()`` are
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from thrifty.pipeline.context import Context, Reply
from thrifty.usage import Usage


@dataclass(frozen=True, slots=True)
class CallInfo:
    """One call's cost and decisions (the library's ``x-thrifty-*`` headers)."""

    request_id: str
    model: str
    """The model that answered (routing or a cascade may have picked another)."""
    requested_model: str
    provider: str
    cost: float | None
    """USD this call cost, retries and side calls included, to 1e-8 (as the header); None
    when a model is unpriced."""
    baseline_cost: float | None
    """USD the request would have cost sent as is to the baseline model."""
    usage: Usage | None
    savings: dict[str, float] = field(default_factory=dict)
    """USD saved, by technique (``cache``, ``compression``, ``routing``, ``prompt_cache``...)."""
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What each technique did (the ledger row's ``techniques``)."""
    headers: dict[str, str] = field(default_factory=dict)
    """The ``x-thrifty-*`` headers the gateway would have sent for this call."""

    @property
    def saved(self) -> float | None:
        """Baseline cost minus cost, when both are known."""
        if self.cost is None or self.baseline_cost is None:
            return None
        return self.baseline_cost - self.cost


def _money(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # "unpriced"
        return None


def call_info(ctx: Context, reply: Reply) -> CallInfo:
    """The facts of a finished call (for a stream: read once it has ended)."""
    headers = {
        "x-thrifty-request-id": ctx.request_id,
        "x-thrifty-model": reply.model,
        **reply.headers,
    }
    return CallInfo(
        request_id=ctx.request_id,
        model=reply.model,
        requested_model=ctx.requested_model,
        provider=reply.provider,
        cost=_money(headers.get("x-thrifty-cost")),
        baseline_cost=_money(headers.get("x-thrifty-baseline-cost")),
        usage=reply.usage,
        savings=dict(ctx.booked_savings),
        decisions={k: dict(v) for k, v in ctx.techniques.items()},
        headers=headers,
    )


def attach(obj: Any, info: CallInfo) -> Any:
    """``obj`` with ``obj.thrifty = info``, outside the model's serialised fields."""
    object.__setattr__(obj, "thrifty", info)
    return obj
