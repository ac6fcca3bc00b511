"""Offline token counting with the bundled tiktoken files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from thrifty.tokens import count_messages, count_text


def test_known_counts_exact_for_openai_models() -> None:
    assert count_text("hello world", "gpt-4o") == (2, False)
    assert count_text("hello world", "gpt-3.5-turbo") == (2, False)
    assert count_text("", "gpt-4o-mini").tokens == 0


def test_other_families_are_marked_approximate() -> None:
    for model in ("claude-sonnet-4-5", "deepseek-chat", "dashscope/qwen-plus"):
        assert count_text("hello world", model).approximate is True


def test_chat_framing_overhead() -> None:
    text = count_text("Say hi", "gpt-4o").tokens
    messages = [{"role": "user", "content": "Say hi"}]
    # 3 per message + role + 3 reply primer, as OpenAI bills chat prompts
    assert count_messages(messages, "gpt-4o").tokens == text + 3 + 1 + 3


@pytest.mark.slow
def test_works_without_network_or_cache_dir(tmp_path) -> None:
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path), "HTTPS_PROXY": "http://127.0.0.1:9"}
    code = (
        "from thrifty.tokens import count_text; print(count_text('offline check', 'gpt-4o').tokens)"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0
    assert not any(tmp_path.iterdir()), "nothing downloaded or cached"
