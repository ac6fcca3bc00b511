"""The right tokenizer per model, and schemas in the prompt count (issue 15, item 6)."""

from __future__ import annotations

import json

import pytest

from thrifty.tokens import count_messages, count_request, count_text, encoding_for_model
from thrifty.tokens.counter import _get_encoding

# Non-Latin text is where cl100k and o200k differ most.
TEXT = "東京都の天気は晴れ、気温は二十五度です。Привет, как дела сегодня?"


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4", "cl100k_base"),
        ("openai/gpt-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-4o", "o200k_base"),
        ("gpt-4.1-mini", "o200k_base"),
        ("o3-mini", "o200k_base"),
    ],
)
def test_openai_families_are_exact(model: str, encoding: str) -> None:
    enc, approximate = encoding_for_model(model)
    assert enc.name == encoding and not approximate
    counted = count_text(TEXT, model)
    assert counted.tokens == len(_get_encoding(encoding).encode_ordinary(TEXT))


def test_bare_gpt4_is_not_counted_with_o200k() -> None:
    cl100k = len(_get_encoding("cl100k_base").encode_ordinary(TEXT))
    o200k = len(_get_encoding("o200k_base").encode_ordinary(TEXT))
    assert cl100k != o200k  # the text tells them apart
    assert count_text(TEXT, "gpt-4").tokens == cl100k


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "deepseek-chat", "qwen-plus"])
def test_other_families_are_approximate(model: str) -> None:
    assert count_text(TEXT, model).approximate


def test_request_count_adds_schemas_and_marks_them_approximate() -> None:
    messages = [{"role": "user", "content": TEXT}]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    fmt = {"type": "json_object"}
    plain = count_request({"messages": messages}, "gpt-4o")
    assert plain == count_messages(messages, "gpt-4o") and not plain.approximate
    full = count_request({"messages": messages, "tools": tools, "response_format": fmt}, "gpt-4o")
    extra = sum(
        count_text(json.dumps(v, separators=(",", ":")), "gpt-4o").tokens for v in (tools, fmt)
    )
    assert full.tokens == plain.tokens + extra and full.approximate
