"""Estimated usage counts reasoning, including ``reasoning_content`` (issue 15, item 6)."""

from __future__ import annotations

from thrifty.pipeline.estimate import STREAMED_REASONING, STREAMED_TEXT, estimate_usage
from thrifty.tokens import count_request, count_text

REQUEST = {"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "9.11 or 9.8?"}]}
# api-docs.deepseek.com/guides/reasoning_model: the answer beside its reasoning_content
REPLY = {
    "choices": [{
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "9.8 is greater than 9.11.",
            "reasoning_content": "Compare the tenths: 8 tenths against 1 tenth, so 9.8 wins.",
        },
        "finish_reason": "stop",
    }],
}  # fmt: skip


def test_reasoning_content_counts_as_reasoning() -> None:
    usage = estimate_usage("chat.completions", REQUEST, REPLY, "deepseek-reasoner")
    message = REPLY["choices"][0]["message"]
    thought = count_text(message["reasoning_content"], "deepseek-reasoner").tokens
    answer = count_text(message["content"], "deepseek-reasoner").tokens
    assert usage.reasoning_tokens == thought > 0
    assert usage.output_tokens == answer + thought
    assert usage.input_tokens == count_request(REQUEST, "deepseek-reasoner").tokens
    assert usage.estimated and usage.approximate  # not DeepSeek's own tokenizer


def test_streamed_reasoning_counts_as_reasoning() -> None:
    message = REPLY["choices"][0]["message"]
    streamed = {STREAMED_TEXT: message["content"], STREAMED_REASONING: message["reasoning_content"]}
    assert estimate_usage("chat.completions", REQUEST, streamed, "deepseek-reasoner") == (
        estimate_usage("chat.completions", REQUEST, REPLY, "deepseek-reasoner")
    )


def test_exact_tokenizer_is_estimated_but_not_approximate() -> None:
    body = {"messages": REQUEST["messages"]}
    reply = {"choices": [{"message": {"role": "assistant", "content": "9.8"}}]}
    usage = estimate_usage("chat.completions", body, reply, "gpt-4")
    assert usage.estimated and not usage.approximate
