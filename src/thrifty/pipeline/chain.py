"""The chain of stages around the terminal dispatch stage.

``thrifty.techniques.build_pipeline`` decides which stages are in it and in what order.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from thrifty.pipeline.context import Context, Reply
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.stage import CallNext, Stage


class Pipeline:
    """Runs ``stages`` in order around the terminal dispatch stage."""

    def __init__(self, stages: Sequence[Stage], dispatch: DispatchStage) -> None:
        self._stages = tuple(stages)
        self._dispatch = dispatch

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages around dispatch, outermost first."""
        return self._stages

    async def run(self, ctx: Context) -> Reply:
        return await self._call(0, ctx)

    def close(self) -> None:
        """Release what stages hold (cache stores, indexes)."""
        for stage in self._stages:
            close = getattr(stage, "close", None)
            if close is not None:
                close()

    async def _call(self, index: int, ctx: Context) -> Reply:
        if index == len(self._stages):
            return await self._dispatch(ctx)
        next_call: CallNext = partial(self._call, index + 1)
        return await self._stages[index](ctx, next_call)
