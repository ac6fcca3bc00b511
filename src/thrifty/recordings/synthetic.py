"""Deterministic text and vectors for what a recording does not hold.

A recording may keep only an answer's length, and the test upstream answers unrecorded
prompts by rule; both need text that is the same in every process (derived from sha256,
never from a random generator), so a replayed run and a served one agree byte for byte.
"""

from __future__ import annotations

import hashlib
import math
import sys
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from thrifty.messages import last_user_text
from thrifty.recordings.dataset import RecordedAnswer
from thrifty.tokens import encoding_for_model

_WORD_LIST = """the be to of and a in that have it for not on with he as you do at this but his
    by from they we say her she or an will my one all would there their what so up out
    if about who get which go me when make can like time no just him know take people
    into year your good some could them see other than then now look only come its over
    think also back after use two how our work first well way even new want because any
    these give day most us great small large early young important public bad same able
    water light world answer model price token cache route cost quality fast simple"""
COMMON_WORDS: tuple[str, ...] = tuple(_WORD_LIST.split())


def _numbers(seed: bytes, count: int) -> list[int]:
    """The first ``count`` of a stable stream of pseudo-random 16-bit numbers derived from
    ``seed``: sha256(seed + counter) blocks, little-endian, drawn at once (a replay of
    10,000 long length-only answers drew ~20 million of them one by one: ~20 s)."""
    blocks = b"".join(
        hashlib.sha256(seed + c.to_bytes(8, "little")).digest() for c in range(-(-count // 16))
    )
    numbers = array("H", blocks)
    if sys.byteorder == "big":  # the stream's numbers are little-endian
        numbers.byteswap()
    return numbers.tolist()[:count]


def rule_text(model: str, messages: Sequence[Mapping[str, Any]], index: int = 0) -> str:
    """The deterministic answer of ``model``: "[model] Words ..." of 8–60 common words.

    Derived from sha256(model + last user message) so each model answers with its own
    text and length; ``index`` > 0 (the other ``n`` choices) salts the seed.
    """
    seed = f"{model}\x00{last_user_text(messages)}"
    if index:
        seed += f"\x00{index}"
    numbers = _numbers(hashlib.sha256(seed.encode()).digest(), 61)  # a count, 8–60 words
    count = 8 + numbers[0] % 53
    words = [COMMON_WORDS[n % len(COMMON_WORDS)] for n in numbers[1 : count + 1]]
    words[0] = words[0].capitalize()
    return f"[{model}] {' '.join(words)}."


def filler_text(model: str, tokens: int, salt: str) -> str:
    """Text of ``tokens`` tokens for a recorded answer that kept only its length."""
    numbers = _numbers(hashlib.sha256(f"{model}\x00{salt}".encode()).digest(), tokens + 8)
    words = " ".join(COMMON_WORDS[n % len(COMMON_WORDS)] for n in numbers)
    enc, _ = encoding_for_model(model)
    return enc.decode(enc.encode_ordinary(words)[:tokens])


def answer_text(answer: RecordedAnswer, model: str, key: str) -> str | None:
    """The text to send for a recorded answer; a length-only record gets filler of exactly
    that length; None when the record holds neither."""
    if answer.text is not None:
        return answer.text
    if answer.output_tokens is not None:
        return filler_text(model, answer.output_tokens, key)
    return None


def embedding_vector(data: bytes, dimensions: int) -> array[float]:
    """A unit-norm float32 vector derived from sha256 of ``data``."""
    raw = [n / 32767.5 - 1.0 for n in _numbers(hashlib.sha256(data).digest(), dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    vector = array("f", (x / norm for x in raw))
    return vector
