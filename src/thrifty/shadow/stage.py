"""The shadow stage: marks a sampled request so its shadow starts when it ends."""

from __future__ import annotations

from functools import partial

from thrifty.pipeline.context import Context, Reply
from thrifty.pipeline.stage import CallNext
from thrifty.shadow.runner import ShadowRunner


class ShadowStage:
    """Second stage (just inside the ledger's): sampling is decided on the caller's own
    request, before any stage rewrites it; the shadow runs after the request ended (a
    finalizer), in the background. The reply passes through untouched."""

    def __init__(self, runner: ShadowRunner) -> None:
        self.runner = runner

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        sampled = self.runner.sample(ctx)
        if sampled is not None:
            ctx.finalizers.append(partial(self.runner.start, sampled))
        return await call_next(ctx)
