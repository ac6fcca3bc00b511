"""A caller's ``cache_control`` marks through the chat form: kept at the same positions
Messages → chat → Messages, counted against Anthropic's limit, stripped for OpenAI."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from thrifty.errors import InvalidRequest
from thrifty.providers.anthropic_cache import CachePlanner, PromptCacheConfig
from thrifty.providers.anthropic_format import chat_to_messages, count_breakpoints, messages_to_chat
from thrifty.providers.cache_marks import has_marks, strip_cache_control

MARK = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def request() -> dict[str, Any]:
    """A Messages request marked at every position Anthropic reads a mark (four)."""
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "tools": [{"name": "f", "input_schema": {"type": "object"}, "cache_control": HOUR}],
        "system": [
            {"type": "text", "text": "Rules."},
            {"type": "text", "text": "More rules.", "cache_control": MARK},
        ],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Call f.", "cache_control": MARK}],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": "42",
                        "cache_control": MARK,
                    },
                    {"type": "text", "text": "And?"},
                ],
            },
        ],
    }


def marks_of(req: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Where a Messages request carries marks, and which."""
    found: list[tuple[Any, ...]] = [
        ("tools", i, t["cache_control"])
        for i, t in enumerate(req.get("tools") or ())
        if "cache_control" in t
    ]
    system = req.get("system")
    found += [
        ("system", i, b["cache_control"])
        for i, b in enumerate(system if isinstance(system, list) else ())
        if "cache_control" in b
    ]
    for m, message in enumerate(req["messages"]):
        content = message["content"]
        for b, block in enumerate(content if isinstance(content, list) else ()):
            if "cache_control" in block:
                found.append(("messages", m, b, block["type"], block["cache_control"]))
    return found


def test_marks_round_trip_at_the_same_positions() -> None:
    original = request()
    sent = chat_to_messages(messages_to_chat(original), original["model"])
    assert marks_of(sent) == marks_of(original)
    assert sent["system"] == original["system"]
    assert count_breakpoints(sent) == 4


def test_unmarked_content_keeps_its_plain_chat_form() -> None:
    chat = messages_to_chat(
        {
            "max_tokens": 10,
            "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        }
    )
    assert chat["messages"] == [
        {"role": "system", "content": "A\n\nB"},
        {"role": "user", "content": "hi"},
    ]


def test_a_mark_on_a_whole_chat_message_goes_on_its_last_block() -> None:
    chat = {
        "messages": [
            {"role": "system", "content": "Rules.", "cache_control": MARK},
            {
                "role": "assistant",
                "content": "Calling.",
                "tool_calls": [
                    {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
                "cache_control": HOUR,
            },
            {"role": "tool", "tool_call_id": "t", "content": "42", "cache_control": MARK},
            {"role": "user", "content": "And?"},
        ]
    }
    sent = chat_to_messages(chat, "m")
    assert sent["system"] == [{"type": "text", "text": "Rules.", "cache_control": MARK}]
    assert marks_of(sent) == [
        ("system", 0, MARK),
        ("messages", 0, 1, "tool_use", HOUR),
        ("messages", 1, 0, "tool_result", MARK),
    ]


def test_a_mark_inside_a_tool_result_goes_on_the_block() -> None:
    chat = messages_to_chat(
        {
            "max_tokens": 10,
            "messages": [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "text", "text": "42", "cache_control": MARK}],
                        }
                    ],
                },
            ],
        }
    )
    sent = chat_to_messages(chat, "m")
    assert sent["messages"][1]["content"] == [
        {"type": "tool_result", "tool_use_id": "t", "content": "42", "cache_control": MARK}
    ]


@pytest.mark.parametrize(
    ("mark", "param"),
    [
        ({"type": "persistent"}, "system.0.cache_control"),
        ({"type": "ephemeral", "ttl": "2h"}, "system.0.cache_control"),
        ({"type": "ephemeral", "scope": "global"}, "system.0.cache_control"),
        ("ephemeral", "system.0.cache_control"),
    ],
)
def test_a_mark_anthropic_would_refuse_is_a_400(mark: Any, param: str) -> None:
    body = {
        "max_tokens": 10,
        "system": [{"type": "text", "text": "A", "cache_control": mark}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat(body)
    assert caught.value.status == 400 and caught.value.param == param


def test_a_fifth_mark_is_a_400_both_ways() -> None:
    five = request()
    five["messages"][2]["content"][1]["cache_control"] = MARK
    with pytest.raises(InvalidRequest, match="found 5"):
        messages_to_chat(five)
    chat = messages_to_chat(request())
    chat["messages"].append(
        {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": MARK}]}
    )
    with pytest.raises(InvalidRequest, match="at most 4"):
        chat_to_messages(chat, "m")


def test_the_planner_leaves_a_callers_marks_alone() -> None:
    sent = chat_to_messages(messages_to_chat(request()), "claude-haiku-4-5")
    before = copy.deepcopy(sent)
    planner = CachePlanner(PromptCacheConfig(min_tokens=1))
    assert planner.place(sent) == 0 and planner.place(sent) == 0
    assert sent == before


def test_stripping_leaves_no_mark_and_the_callers_body_unchanged() -> None:
    chat = messages_to_chat(request())
    chat["messages"][0]["cache_control"] = MARK  # a whole-message mark, as some clients send
    before = copy.deepcopy(chat)
    bare = strip_cache_control(chat)
    assert has_marks(chat) and not has_marks(bare)
    assert "cache_control" not in repr(bare)
    assert chat == before
    assert [m["role"] for m in bare["messages"]] == [m["role"] for m in chat["messages"]]
    unmarked = {"messages": [{"role": "user", "content": "hi"}]}
    assert strip_cache_control(unmarked) is unmarked
