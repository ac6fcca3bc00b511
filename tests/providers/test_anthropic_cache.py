"""The prompt-cache planner's rule: which prefixes get a ``cache_control`` breakpoint."""

from __future__ import annotations

import copy
from typing import Any

from thrifty.providers.anthropic_cache import CachePlanner, PromptCacheConfig, at_path, units
from thrifty.tokens import count_text

LONG = " ".join(f"Clause {n}: say what the contract says, no more." for n in range(200))
TOOLS = [
    {
        "name": f"tool_{n}",
        "description": LONG if n == 0 else "short",
        "input_schema": {"type": "object"},
    }
    for n in range(3)
]


def request(turns: int = 1, question: str = "Q?") -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for n in range(turns - 1):
        messages += [
            {"role": "user", "content": [{"type": "text", "text": f"{LONG} turn {n}"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        ]
    messages.append({"role": "user", "content": [{"type": "text", "text": question}]})
    return {
        "model": "claude-haiku-4-5",
        "system": [{"type": "text", "text": LONG}],
        "tools": copy.deepcopy(TOOLS),
        "messages": messages,
    }


def marked(req: dict[str, Any]) -> list[tuple[str | int, ...]]:
    return [u.path for u in units(req) if "cache_control" in at_path(req, u.path)]


def test_break_even_follows_the_multipliers() -> None:
    five_minutes = CachePlanner(PromptCacheConfig())
    assert not five_minutes.pays(0.25) and five_minutes.pays(0.3)
    one_hour = CachePlanner(PromptCacheConfig(ttl_s=3600, write_multiplier=2.0))
    assert not one_hour.pays(1.0) and one_hour.pays(1.2)


def test_a_one_hour_planner_asks_for_the_one_hour_cache() -> None:
    for ttl_s, mark in ((300, {"type": "ephemeral"}), (3600, {"type": "ephemeral", "ttl": "1h"})):
        planner = CachePlanner(PromptCacheConfig(ttl_s=ttl_s))
        req = request()
        planner.place(copy.deepcopy(req))
        assert planner.place(req) > 0  # seen twice: marked
        assert {str(at_path(req, p)["cache_control"]) for p in marked(req)} == {str(mark)}


def test_it_learns_how_often_prefixes_come_back() -> None:
    now = [0.0]
    planner = CachePlanner(PromptCacheConfig(), clock=lambda: now[0])
    # traffic where every document is asked about twice, 10 s apart, and never again
    for doc in range(60):
        for _ in range(2):
            now[0] += 10
            planner.place(
                request(question=f"doc {doc}?")
                | {"system": [{"type": "text", "text": f"Document {doc}. {LONG}"}]}
            )
        now[0] += 1000  # past the cache's lifetime
    assert planner.chance(1) > 0.9 and planner.chance(2) < 0.1
    assert planner.pays(planner.expected_reuses(1)) and not planner.pays(planner.expected_reuses(2))
    fresh = request(question="new?") | {"system": [{"type": "text", "text": f"New. {LONG}"}]}
    fresh["tools"] = []
    assert planner.place(fresh) == 1  # a first sighting is now worth marking: it comes back
    now[0] += 10
    again = request(question="again?") | {"system": [{"type": "text", "text": f"New. {LONG}"}]}
    again["tools"] = []
    assert planner.place(again) == 0  # the second one does not


def test_a_prefix_is_marked_once_it_has_been_seen() -> None:
    planner = CachePlanner(PromptCacheConfig())
    first = request(question="first?")
    assert planner.place(first) == 0 and marked(first) == []
    second = request(question="second?")
    assert planner.place(second) == 2
    assert marked(second) == [("tools", 2), ("system", 0)]  # the last tool, the system prompt


def test_earlier_turns_are_a_candidate() -> None:
    planner = CachePlanner(PromptCacheConfig())
    planner.place(request(turns=3, question="a?"))
    again = request(turns=3, question="b?")
    assert planner.place(again) == 3
    assert marked(again)[-1] == ("messages", 3, "content", 0)  # the turn before the last


def test_short_prefixes_and_a_callers_own_breakpoints_are_left_alone() -> None:
    tokens = count_text(LONG, "claude-haiku-4-5").tokens
    planner = CachePlanner(PromptCacheConfig(min_tokens=10 * tokens))
    for _ in range(3):
        short = request()
        assert planner.place(short) == 0
    planner = CachePlanner(PromptCacheConfig())
    own = request()
    own["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral"}
    for _ in range(3):
        assert planner.place(own) == 0
    assert marked(own) == [("messages", 0, "content", 0)]


def test_the_walk_ignores_cache_control_in_hashes() -> None:
    plain = request()
    with_mark = request()
    with_mark["system"][0]["cache_control"] = {"type": "ephemeral"}
    assert [u.digest for u in units(plain)] == [u.digest for u in units(with_mark)]
    assert [u.tokens for u in units(plain)] == sorted(u.tokens for u in units(plain))
