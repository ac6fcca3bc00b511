"""Worst cost of the calls a pipeline makes for itself, so a reservation covers them too.

Each bound is the most the technique's code can send (its fixed prompt, counted, plus the
parts of the request it quotes) and the ``max_tokens`` it asks for:

* cascade judge (``cascade.judge_model``): one call per checked tier, quoting the
  request's system and question (at most the prompt) and the tier's answer (at most the
  tier's answer limit, re-counted +25% since the judge's tokenizer may differ);
  160 answer tokens;
* semantic-cache verifier (``cache.semantic.verify_model``): one call, quoting the
  question and a stored question; the cache asks only about a stored question of at most
  ``2 × question + 64`` tokens (``cache/verify.py``); 4 answer tokens;
* abstractive summary (``compression.abstractive``): one call per message it may
  summarise, quoting the message (+25%, plus one placeholder per protected segment);
  its answer limit is the summariser's own formula.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from thrifty.cache.verify import stored_limit, verify_messages
from thrifty.cascade.judge import judge_messages
from thrifty.governance.prices import call_cost
from thrifty.messages import last_user_text
from thrifty.registry import ModelRegistry
from thrifty.tokens import count_messages, count_text

if TYPE_CHECKING:
    from thrifty.config.schema import ThriftyConfig

__all__ = [
    "judge_cost",
    "summary_cost",
    "verify_cost",
]

PAD = 1.25
"""Re-counting a text with another tokenizer (or after an edit) may give more tokens."""
JUDGE_MAX_TOKENS = 160  # cascade/stage.py
VERIFY_MAX_TOKENS = 4  # cache/semantic.py
_CLIP_NOTE = 24  # "[... N more characters not shown]", per clipped field
_PLACEHOLDER = 8  # "[[KEEP-n]]" in place of one protected segment


def _upstream(registry: ModelRegistry, name: str) -> str:
    return registry.get(name).deployments[0].upstream_model


def judge_cost(
    registry: ModelRegistry,
    judge: str,
    prompt_tokens: int,
    answer_tokens: int,
    default_output: int,
) -> float:
    fixed = count_messages(judge_messages("(none)", "", ""), _upstream(registry, judge)).tokens
    tokens = fixed + 3 * _CLIP_NOTE + prompt_tokens + math.ceil(answer_tokens * PAD)
    return call_cost(registry, judge, tokens, {"max_tokens": JUDGE_MAX_TOKENS}, default_output)


def verify_cost(
    registry: ModelRegistry, config: ThriftyConfig, body: dict[str, Any], default_output: int
) -> float:
    model = config.cache.semantic.verify_model
    if not (config.cache.enabled and config.cache.semantic.enabled and model):
        return 0.0
    upstream = _upstream(registry, model)
    question = count_text(last_user_text(body.get("messages") or []), upstream).tokens
    fixed = count_messages(verify_messages("", ""), upstream).tokens
    tokens = fixed + question + stored_limit(question)
    return call_cost(registry, model, tokens, {"max_tokens": VERIFY_MAX_TOKENS}, default_output)


def summary_cost(
    registry: ModelRegistry,
    config: ThriftyConfig,
    body: dict[str, Any],
    counted_as: str,
    default_output: int,
) -> float:
    """Summary calls for every message before the final question that may be summarised
    (``counted_as``: the model whose tokenizer the compression stage counts with)."""
    section = config.compression
    abstractive = section.abstractive
    if not (section.enabled and abstractive.enabled and abstractive.model):
        return 0.0  # (the config refuses abstractive compression without a model)
    from thrifty.compression.abstractive import _INSTRUCTIONS
    from thrifty.compression.segments import split_segments

    messages = body.get("messages") or []
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    roles = set(section.roles) & set(abstractive.roles)
    model = abstractive.model
    upstream = _upstream(registry, model)
    instructions = count_text(_INSTRUCTIONS.format(words=10**9), upstream).tokens + 16
    total = 0.0
    for message in messages[:last_user]:
        text = message.get("content")
        if message.get("role") not in roles or not isinstance(text, str):
            continue
        tokens = math.ceil(count_text(text, _upstream(registry, counted_as)).tokens * PAD)
        if tokens < abstractive.min_tokens:
            continue
        protected = sum(1 for s in split_segments(text) if s.protected)
        sent = instructions + math.ceil(count_text(text, upstream).tokens * PAD)
        sent += _PLACEHOLDER * protected
        target = max(16, int(tokens / abstractive.ratio))
        limit = {"max_tokens": int(target * 1.25) + 16}  # compression/abstractive.py
        total += call_cost(registry, model, sent, limit, default_output)
    return total
