"""The pipeline's first stage: let a request in (model allowed, rate limits, budget
reservation), and settle what it spent when it ends.

Outermost, before the ledger stage: a refused request writes no ledger row. Built only
when something can refuse or reserve (:attr:`Admission.active`); without governance
the stage is absent from the chain. Authentication happens before the pipeline (the
caller decides which per-key pipeline runs); the caller travels on ``ctx.caller``.
"""

from __future__ import annotations

from thrifty.governance.admit import Admission
from thrifty.governance.keys.identity import ANONYMOUS, Caller
from thrifty.pipeline.context import Context, Reply
from thrifty.pipeline.stage import CallNext
from thrifty.pipeline.worst_case import WorstCase

__all__ = ["GovernanceStage", "caller_of"]


def caller_of(ctx: Context) -> Caller:
    """The identity ``ctx`` was authenticated as (anonymous when none was set)."""
    return ctx.caller if isinstance(ctx.caller, Caller) else ANONYMOUS


class GovernanceStage:
    """Admission in front of one pipeline; ``worst`` prices that pipeline's stages."""

    def __init__(self, admission: Admission, worst: WorstCase) -> None:
        self._admission = admission
        self.worst = worst

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        return await self._admission.admit(ctx, caller_of(ctx), self.worst, call_next)
