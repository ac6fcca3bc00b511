"""Offline token counting.

OpenAI families are counted exactly with tiktoken, using the BPE files shipped in
``tokens/data`` (tiktoken would otherwise download them on first use, which fails on
machines without internet). Other families (Claude, DeepSeek, Qwen, Llama, ...) are
counted with ``o200k_base`` and flagged ``approximate``.
"""

from thrifty.tokens.counter import (
    TokenCount,
    count_messages,
    count_request,
    count_text,
    encoding_for_model,
)

__all__ = ["TokenCount", "count_messages", "count_request", "count_text", "encoding_for_model"]
