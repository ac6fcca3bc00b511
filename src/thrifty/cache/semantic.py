"""The semantic cache stage: a *similar* question gets the stored answer — when it is
close enough, asks in the same context with the same parameters, passes the guards
(numbers, units, negation, entities, word order, lower-case kinds, opposed words must
agree) and the second stage: the offline learned pair check (on by default; it reads
both questions with MiniLM when installed) and, optionally, an LLM verifier."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from thrifty.cache.common import (
    Controls,
    LookupModels,
    cache_header,
    hit_reply,
    off_loop,
    sampled_refusal,
    scope_of,
    store_after,
)
from thrifty.cache.config import CacheConfig
from thrifty.cache.guards import guard_verdict
from thrifty.cache.keys import semantic_partition
from thrifty.cache.pair_check import PairCheck, load_pair_check
from thrifty.cache.semantic_index import SemanticIndex
from thrifty.cache.verify import may_ask, says_yes, stored_limit, verify_messages
from thrifty.messages import last_user_text
from thrifty.pipeline.context import CHAT, Context, Reply
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.side_call import side_call
from thrifty.pipeline.stage import CallNext
from thrifty.pipeline.worst_case import Bound, Spender
from thrifty.registry import ModelRegistry
from thrifty.tokens import count_messages, count_text

log = logging.getLogger(__name__)
_THRESHOLD_WITHOUT_PAIR_CHECK = 0.92
_VERIFY_MAX_TOKENS = 4  # YES or NO


def why_not_eligible(
    body: dict[str, Any], config: CacheConfig, *, allow_random: bool = False
) -> str | None:
    section = config.semantic
    messages = body.get("messages") or []
    turns = [m for m in messages if m.get("role") not in ("system", "developer")]
    if len(turns) > 1 and not section.multi_turn:
        return "multi-turn"
    if (body.get("tools") or body.get("functions")) and not section.tools:
        return "tools"
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if not isinstance(temperature, int | float):  # the upstream answers it with its own 400
        return "temperature is not a number"
    cap = section.max_temperature
    if cap is not None and temperature > cap:
        return f"temperature {temperature} above semantic.max_temperature {cap}"
    if cap is None:
        refusal = sampled_refusal(body, config.cache_nondeterministic, allow_random)
        if refusal is not None:
            return refusal
    if not last_user_text(messages).strip():
        return "no question text"
    return None


class SemanticCacheStage(Spender):
    def __init__(
        self,
        config: CacheConfig,
        index: SemanticIndex,
        registry: ModelRegistry,
        embed: Any,
        dispatch: DispatchStage,
    ) -> None:
        self._config = config
        self._index = index
        self._remote = bool(getattr(index, "remote", False))
        self._registry = registry
        self._embed = embed
        self._dispatch = dispatch
        self.lookup_models: LookupModels | None = None  # routing's and the cascade's models
        section = config.semantic
        self._pair_check: PairCheck | None = None
        self._pair_threshold = 0.0
        self._threshold = (
            _THRESHOLD_WITHOUT_PAIR_CHECK if section.threshold is None else section.threshold
        )
        if section.pair_check.enabled:
            self._pair_check = load_pair_check(
                section.pair_check.model, section.pair_check.encoder
            )
            self._pair_threshold = (
                self._pair_check.pair_threshold
                if section.pair_check.threshold is None
                else section.pair_check.threshold
            )
            if section.threshold is None:
                self._threshold = self._pair_check.similarity_threshold
            if self._pair_check.cross:  # read the weights now, not on the first candidate
                from thrifty.embeddings.minilm import get_minilm

                get_minilm().load()

    def close(self) -> None:
        self._index.close()

    def worst_case(self, ctx: Context, bound: Bound, models: set[str]) -> float:
        """One verifier call (``semantic.verify_model``): the question and a stored one
        (at most :func:`stored_limit` tokens, as :func:`may_ask` enforces), YES or NO."""
        model = self._config.semantic.verify_model
        if ctx.endpoint != CHAT or not model:
            return 0.0
        upstream = bound.upstream(model)
        question = count_text(last_user_text(ctx.body.get("messages") or []), upstream).tokens
        fixed = count_messages(verify_messages("", ""), upstream).tokens
        tokens = fixed + question + stored_limit(question)
        return bound.call_cost(model, tokens, {"max_tokens": _VERIFY_MAX_TOKENS})

    async def __call__(self, ctx: Context, call_next: CallNext) -> Reply:
        if ctx.endpoint != CHAT:
            return await call_next(ctx)
        controls = Controls.of(ctx, self._config.ttl_s)
        reason = why_not_eligible(ctx.body, self._config, allow_random=controls.allow_random)
        if reason is not None:
            ctx.techniques.setdefault("cache", {})["semantic"] = f"skipped: {reason}"
            return await call_next(ctx)
        scope = scope_of(ctx, self._config.scope)
        models = self.lookup_models(ctx) if self.lookup_models is not None else [ctx.model]
        answer_model = models[0]
        partition = semantic_partition(ctx.body, scope, answer_model)
        asked = orjson.loads(orjson.dumps(ctx.body))  # as sent, before later stages rewrite it
        question = last_user_text(ctx.body["messages"])
        started = time.perf_counter()
        vector = self._embed(question)
        note: dict[str, Any] = {"embed_ms": round((time.perf_counter() - started) * 1000, 3)}
        match = None
        for model in models if controls.lookup else ():
            searched = semantic_partition(ctx.body, scope, model)
            match = await off_loop(self._remote, self._index.search, searched, vector)
            if match is not None:
                answer_model = model
                break
        if match is not None:
            note["similarity"] = round(match.similarity, 4)
            if match.similarity >= self._threshold:
                # MiniLM reads both questions (~10-20 ms): in a worker thread, so the event
                # loop keeps serving other requests meanwhile
                slow = self._pair_check is not None and self._pair_check.cross
                blocked = await off_loop(
                    slow, self._blocked, question, match.question, match.similarity, note
                )
                if blocked is None and not await self._confirmed(ctx, question, match.question):
                    note["blocked_by"] = "verifier: not the same request"
                elif blocked is None:
                    ctx.techniques["cache"] = {"result": "hit", "type": "semantic", **note}
                    headers = {
                        "x-thrifty-cache": cache_header(
                            "hit-semantic",
                            f"a similar question to {answer_model} "
                            f"(similarity {match.similarity:.4f})",
                        ),
                        "x-thrifty-cache-similarity": f"{match.similarity:.4f}",
                    }
                    if "pair_check" in note:
                        headers["x-thrifty-cache-pair-check"] = f"{note['pair_check']:.4f}"
                    return hit_reply(ctx, match.response, self._registry, "semantic", headers)
                else:
                    note["blocked_by"] = blocked
        ctx.techniques.setdefault("cache", {"result": "miss"})["semantic"] = note
        reply = await call_next(ctx)
        if not controls.store:
            return reply

        def save(value: bytes) -> None:
            try:
                same = reply.model == answer_model  # else: under the model that answered
                stored = partition if same else semantic_partition(asked, scope, reply.model)
                self._index.add(stored, scope, question, vector, value, controls.ttl_s)
            except Exception:  # a cache that cannot write must not fail the request
                log.warning("semantic cache write failed", exc_info=True)

        return await store_after(reply, save, remote=self._remote)

    def _blocked(
        self, question: str, stored: str, similarity: float, note: dict[str, Any]
    ) -> str | None:
        """Why the guards or the pair check refuse this candidate (None: they agree)."""
        verdict = guard_verdict(question, stored, self._config.semantic.guards)
        if not verdict.ok:
            return f"{verdict.failed}: {verdict.detail}"
        if self._pair_check is None:
            return None
        started = time.perf_counter()
        probability = self._pair_check.probability(question, stored, similarity)
        note["pair_check"] = round(probability, 4)
        note["pair_check_ms"] = round((time.perf_counter() - started) * 1000, 3)
        if probability < self._pair_threshold:
            return f"pair_check: {probability:.3f} < {self._pair_threshold:.3f}"
        return None

    async def _confirmed(self, ctx: Context, question: str, stored: str) -> bool:
        model = self._config.semantic.verify_model
        if model is None:
            return True
        upstream = self._registry.get(model).deployments[0].upstream_model
        if not may_ask(question, stored, upstream):  # a budget reserved for no longer
            return False
        reply = await side_call(
            self._dispatch, ctx, model, verify_messages(question, stored),
            purpose="cache_verify", max_tokens=_VERIFY_MAX_TOKENS,
        )  # fmt: skip
        return says_yes(reply)
