"""The semantic cache verifier serves a hit only on a clear YES."""

from __future__ import annotations

import pytest

from thrifty.cache.verify import says_yes, verify_messages


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("YES", True), ("yes.", True), ("  Yes, they are the same.", True), ("**YES**", True),
     ("NO", False), ("No.", False), ("", False), ("Maybe", False), ("yesterday", False),
     ("I think yes", False), ("Not sure; YES?", False)],
)  # fmt: skip
def test_says_yes_is_conservative(reply: str, expected: bool) -> None:
    assert says_yes(reply) is expected


def test_prompt_shows_both_requests() -> None:
    messages = verify_messages("Convert 1 km to miles", "Convert 1 miles to km")
    assert messages[0]["role"] == "system" and "YES or NO" in messages[0]["content"]
    assert "Convert 1 km to miles" in messages[1]["content"]
    assert "Convert 1 miles to km" in messages[1]["content"]
