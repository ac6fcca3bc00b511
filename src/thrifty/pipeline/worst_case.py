"""The most a request can cost, as the stages of its pipeline declare it.

Governance reserves this amount against budgets before the request runs. The rule (also
in ``docs/keys-and-budgets.md``): the reservation is the sum of the worst cost of every
call the pipeline may make for the request, and each stage that can spend money says
what its own calls may cost (:class:`Spender`); nothing here knows any technique.

* **The answer.** One call: the prompt's tokens at the dearest input price plus the
  longest possible answer (``max_completion_tokens``/``max_tokens``, capped by the
  model's output limit; else the model's output limit; else
  ``governance.default_max_output_tokens``) at the dearest output price, times ``n``;
  the dearer of the model and its fallbacks. Failed tries cost nothing except a
  timed-out one, which is billed its prompt: every try dispatch may make before the
  answer (``retries.max_attempts`` per deployment of the model, then of each fallback)
  is reserved at its prompt's cost (:func:`~thrifty.pipeline.prices.call_cost`). The
  models the answer may come from are the request's own, as widened by the stages
  (:meth:`Spender.answer_models`: routing's candidates, a cascade's tiers); the dearest
  of them is reserved, or more when a stage makes the answer with several calls
  (:meth:`Spender.answer_cost`: a cascade's whole climb with its judges).
* **Other calls** a stage makes for the request (:meth:`Spender.worst_case`: the semantic
  cache's verifier, abstractive summaries, the gateway window's packed call).

Prompts are counted exactly for OpenAI tokenizers (with the requested model's); other
families with o200k, padded by 25%. Images and audio are not counted (their price depends
on resolution): those requests may settle above their reservation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thrifty.pipeline.context import CHAT, Context
from thrifty.pipeline.prices import answer_tokens, call_cost
from thrifty.registry import ModelRegistry, ResolvedModel
from thrifty.tokens import count_request, count_text

__all__ = ["PAD", "Bound", "Estimate", "Spender", "WorstCase", "prompt_tokens"]

PAD = 1.25
"""Re-counting a text with another tokenizer (or after an edit) may give more tokens."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """``prompt_tokens`` (for tokens-per-minute limits) and the worst-case cost in USD."""

    prompt_tokens: int
    cost_usd: float


def prompt_tokens(body: dict[str, Any], endpoint: str, model: ResolvedModel) -> int:
    """The request's prompt tokens, padded by 25% when the count is approximate."""
    name = model.deployments[0].upstream_model
    if endpoint != CHAT:
        value = body.get("input")
        items = [value] if isinstance(value, str) else list(value or ())
        tokens, approximate = 0, False
        for item in items:
            if isinstance(item, str):
                counted = count_text(item, name)
                tokens += counted.tokens
                approximate = approximate or counted.approximate
            elif isinstance(item, list):  # already token ids
                tokens += len(item)
    else:  # the messages plus the tool and response_format schemas, as estimates count
        counted = count_request(body, name)
        tokens, approximate = counted.tokens, counted.approximate
    return math.ceil(tokens * PAD) if approximate else tokens


class Spender:
    """A stage that may spend money on a request says how much, at most.

    Stages subclass it and override what applies to them; the defaults add nothing.
    The methods are asked in chain order (outermost first), before the request runs.
    """

    def answer_models(self, ctx: Context, models: set[str]) -> set[str]:
        """The models the answer may come from, given ``models`` (what the stages before
        allow; at first the request's own model)."""
        return models

    def header_models(self, ctx: Context) -> set[str]:
        """Models the request names for this stage in a control header (the caller's key
        must be allowed each of them)."""
        return set()

    def answer_cost(self, ctx: Context, bound: Bound, tokens: int, body: dict[str, Any]) -> float:
        """The most this stage may spend making the answer to ``body`` (a prompt of
        ``tokens``) by itself with several calls; 0 when it does not make the answer."""
        return 0.0

    def worst_case(self, ctx: Context, bound: Bound, models: set[str]) -> float:
        """The most the calls this stage makes besides the answer may cost (``models``:
        the models the answer may come from when this stage runs)."""
        return 0.0


class Bound:
    """Pricing tools for one request under one pipeline, handed to each :class:`Spender`."""

    __slots__ = ("_ctx", "_spenders", "default_output", "models", "registry", "tries")

    def __init__(
        self,
        ctx: Context,
        registry: ModelRegistry,
        default_output: int,
        spenders: Sequence[Spender],
        models: set[str],
        tries: int = 1,
    ) -> None:
        self._ctx = ctx
        self._spenders = spenders
        self.registry = registry
        self.default_output = default_output
        self.models = models
        """Every model the answer may come from."""
        self.tries = tries
        """Tries per deployment (``retries.max_attempts``): each may time out, billed."""

    def upstream(self, name: str) -> str:
        """The model name ``name``'s first deployment is called with (its tokenizer)."""
        return self.registry.get(name).deployments[0].upstream_model

    def answer_tokens(self, body: dict[str, Any], name: str) -> int:
        """The longest answer ``body`` allows from ``name``."""
        return answer_tokens(body, self.registry.get(name), self.default_output)

    def call_cost(self, name: str, tokens: int, body: dict[str, Any], *, choices: int = 1) -> float:
        """The most one call to ``name`` (and its fallbacks) can cost."""
        return call_cost(self.registry, name, tokens, body, self.default_output,
                         choices=choices, tries=self.tries)  # fmt: skip

    def answer(self, tokens: int, body: dict[str, Any]) -> float:
        """The most the answer to ``body`` (a prompt of ``tokens``) can cost: the dearest
        single call among :attr:`models`, or a stage's own several calls if dearer."""
        if self._ctx.endpoint != CHAT:
            return max(self.call_cost(m, tokens, {"max_tokens": 0}, choices=0) for m in self.models)
        n = body.get("n")
        choices = n if isinstance(n, int) and n > 0 else 1
        worst = max(self.call_cost(m, tokens, body, choices=choices) for m in self.models)
        for spender in self._spenders:
            worst = max(worst, spender.answer_cost(self._ctx, self, tokens, body))
        return worst


class WorstCase:
    """What the stages of one pipeline may spend on a request, summed."""

    def __init__(
        self,
        registry: ModelRegistry,
        stages: Sequence[object],
        default_output: int,
        tries: int = 1,
    ) -> None:
        """``tries``: dispatch's tries per deployment (``retries.max_attempts``)."""
        self._registry = registry
        self._spenders = tuple(s for s in stages if isinstance(s, Spender))
        self._default = default_output
        self._tries = tries

    def _walk(self, ctx: Context) -> list[set[str]]:
        """The answer's models as each spender sees them, then after the last."""
        models = {ctx.model}
        seen = []
        for spender in self._spenders:
            seen.append(models)
            models = spender.answer_models(ctx, models)
        seen.append(models)
        return seen

    def candidate_models(self, ctx: Context) -> set[str]:
        """Every model the pipeline may call as this request's answer."""
        return self._walk(ctx)[-1]

    def header_models(self, ctx: Context) -> set[str]:
        """Models the request's control headers name (each must be allowed)."""
        named: set[str] = set()
        for spender in self._spenders:
            named |= spender.header_models(ctx)
        return named

    def estimate(self, ctx: Context, *, priced: bool) -> Estimate:
        """Prompt tokens, and (when ``priced``) the most ``ctx`` can cost."""
        tokens = prompt_tokens(ctx.body, ctx.endpoint, self._registry.get(ctx.model))
        if not priced:
            return Estimate(tokens, 0.0)
        seen = self._walk(ctx)
        bound = Bound(ctx, self._registry, self._default, self._spenders, seen[-1], self._tries)
        cost = bound.answer(tokens, ctx.body)
        for spender, models in zip(self._spenders, seen, strict=False):
            cost += spender.worst_case(ctx, bound, models)
        return Estimate(tokens, cost)
