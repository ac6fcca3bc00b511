"""Count tokens of text and chat messages, exactly for OpenAI models, else approximately."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import threading
import types
from importlib import resources
from typing import Any, NamedTuple

import tiktoken
from tiktoken_ext import openai_public

# sha256 of the uncompressed BPE files, as tiktoken itself pins them.
_EXPECTED_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
_CL100K_PREFIXES = ("gpt-3.5", "gpt-35", "gpt-4-", "text-embedding-", "davinci", "babbage")
_EXACT_FAMILIES = ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "davinci", "babbage")

# Per-message framing overhead of the chat format (OpenAI cookbook figures).
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_TOKENS_REPLY_PRIMER = 3

_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


class TokenCount(NamedTuple):
    tokens: int
    approximate: bool


def _load_bundled_ranks(name: str) -> dict[bytes, int]:
    data = resources.files("thrifty.tokens").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    raw = gzip.decompress(data)
    if hashlib.sha256(raw).hexdigest() != _EXPECTED_SHA256[name]:
        raise RuntimeError(f"bundled tokenizer file {name} is corrupt (sha256 mismatch)")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _get_encoding(name: str) -> tiktoken.Encoding:
    """Build a tiktoken encoding from the bundled file, once per process."""
    enc = _encodings.get(name)
    if enc is not None:
        return enc
    with _lock:
        enc = _encodings.get(name)
        if enc is None:
            constructor = getattr(openai_public, name)
            # Run tiktoken's own constructor (it owns pat_str and special tokens) with its
            # loader swapped for ours, so no URL is ever fetched.
            offline = types.FunctionType(
                constructor.__code__,
                {
                    **constructor.__globals__,
                    "load_tiktoken_bpe": lambda *_a, **_k: _load_bundled_ranks(name),
                },
            )
            enc = tiktoken.Encoding(**offline())
            _encodings[name] = enc
    return enc


def encoding_for_model(model: str) -> tuple[tiktoken.Encoding, bool]:
    """Return the encoding to count ``model``'s tokens with, and whether it is approximate.

    GPT-3.5 and GPT-4 (bare ``gpt-4``, ``gpt-4-0613``, ``gpt-4-turbo``, ``gpt-4-32k``) use
    cl100k; GPT-4o, 4.1, 4.5, 5 and the o-series use o200k. Other families get o200k,
    flagged approximate.
    """
    base = model.rsplit("/", 1)[-1].lower()
    if (base == "gpt-4" or base.startswith(_CL100K_PREFIXES)) and not base.startswith(
        ("gpt-4o", "gpt-4.1", "gpt-4.5")
    ):
        return _get_encoding("cl100k_base"), False
    exact = base.startswith(_EXACT_FAMILIES)
    return _get_encoding("o200k_base"), not exact


@functools.lru_cache(maxsize=16384)
def _count(encoding: str, text: str) -> int:
    """Tokens of ``text``; recent texts are remembered (prompts repeat: retries, cascade
    tiers, replays), which costs a hash of the text instead of a BPE pass."""
    return len(_get_encoding(encoding).encode_ordinary(text))


def count_text(text: str, model: str) -> TokenCount:
    enc, approximate = encoding_for_model(model)
    return TokenCount(_count(enc.name, text), approximate)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: count the text parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def count_messages(messages: list[dict[str, Any]], model: str) -> TokenCount:
    """Prompt tokens of a chat request, with the chat format's framing overhead.

    Tool calls are counted by their JSON text. Images are not counted (their price
    depends on resolution) and make the count approximate.
    """
    enc, approximate = encoding_for_model(model)
    count = functools.partial(_count, enc.name)

    total = _TOKENS_REPLY_PRIMER
    for message in messages:
        total += _TOKENS_PER_MESSAGE
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") not in (None, "text") for p in content
        ):
            approximate = True
        total += count(_content_text(content))
        total += count(str(message.get("role", "")))
        if message.get("name"):
            total += _TOKENS_PER_NAME + count(str(message["name"]))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += count(str(function.get("name", "")))
            total += count(str(function.get("arguments", "")))
    return TokenCount(total, approximate)


_SCHEMA_FIELDS = ("tools", "functions", "response_format")


def count_request(body: dict[str, Any], model: str) -> TokenCount:
    """Prompt tokens of a whole chat request: the messages plus the tool, function and
    ``response_format`` schemas the provider also reads (and bills) as prompt.

    The schemas are counted as their JSON text; providers render them in their own
    format, so a request that has any is counted approximately.
    """
    messages = body.get("messages")
    counted = count_messages(messages if isinstance(messages, list) else [], model)
    tokens, approximate = counted.tokens, counted.approximate
    for field in _SCHEMA_FIELDS:
        value = body.get(field)
        if value:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
            tokens += count_text(text, model).tokens
            approximate = True
    return TokenCount(tokens, approximate)
