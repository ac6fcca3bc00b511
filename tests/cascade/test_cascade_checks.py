"""Cascade checks on real-looking OpenAI request and chat.completion bodies (no network)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from thrifty.cascade import checks as checks_module
from thrifty.cascade.checks import (
    Check,
    HeuristicsCheck,
    LogprobsCheck,
    Verdict,
    build_checks,
    combine,
    logprob_confidence,
    register_check,
    registered_checks,
)
from thrifty.cascade.formats import FormatCheck, schema_errors
from thrifty.cascade.judge import RUBRIC, JudgeCheck, parse_rating


def request(question: str = "What is 2+2?", **extra: Any) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": question},
    ]
    return {"model": "gpt-4o-mini", "messages": messages, **extra}


def completion(
    content: str | None = "4",
    *,
    finish_reason: str = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    logprobs: list[dict[str, Any]] | None = None,
    refusal: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": None if logprobs is None else {"content": logprobs, "refusal": None},
        "finish_reason": finish_reason,
    }
    return {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [choice],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
        "system_fingerprint": "fp_06737a9306",
    }


def run(check: Check, req: dict[str, Any], resp: dict[str, Any], judge: Any = None) -> Any:
    return asyncio.run(check(req, resp, judge))


# --- heuristics -----------------------------------------------------------------------


def test_heuristics_accepts_a_one_word_answer_to_a_short_factual_question() -> None:
    verdict = run(HeuristicsCheck(), request("What is 2+2?"), completion("4"))
    assert verdict.score == 1.0 and not verdict.hard_fail


@pytest.mark.parametrize(
    ("content", "reason"),
    [("", "empty answer"), ("  \n\t ", "empty answer"), (None, "no content and no tool calls")],
)
def test_heuristics_hard_fails_empty_or_null_answers(content: str | None, reason: str) -> None:
    verdict = run(HeuristicsCheck(), request(), completion(content))
    assert verdict == Verdict("heuristics", 0.0, reason, hard_fail=True)


def test_heuristics_hard_fails_a_truncated_answer() -> None:
    long_answer = "Photosynthesis is the process by which plants convert light energy into"
    verdict = run(HeuristicsCheck(), request(), completion(long_answer, finish_reason="length"))
    assert verdict.hard_fail and "finish_reason=length" in verdict.reason


def test_heuristics_hard_fails_content_filter_and_missing_choices() -> None:
    filtered = run(HeuristicsCheck(), request(), completion("", finish_reason="content_filter"))
    assert filtered.hard_fail and "content filter" in filtered.reason
    no_choices = run(HeuristicsCheck(), request(), {"object": "chat.completion", "choices": []})
    assert no_choices.hard_fail and "no choices" in no_choices.reason


def test_heuristics_abstains_on_a_tool_call_answer() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert run(HeuristicsCheck(), request(), completion(None, tool_calls=[call])) is None
    assert run(HeuristicsCheck(), request(), completion("", tool_calls=[call])) is None


@pytest.mark.parametrize(
    "answer",
    [
        "I can't help with that.",
        "I’m sorry, but I cannot assist with that request.",
        "As an AI language model, I cannot browse the internet.",
        "I'm sorry, but I can't provide that information.",
        "I am unable to comply with this request.",
        "I must decline to answer that.",
        "i cannot help with that",
    ],
)
def test_heuristics_rejects_refusals(answer: str) -> None:
    verdict = run(HeuristicsCheck(), request("How do I pick a lock?"), completion(answer))
    assert verdict.score == 0.0 and not verdict.hard_fail
    assert verdict.reason.startswith("refusal")


def test_heuristics_reads_the_refusal_field_of_structured_outputs() -> None:
    resp = completion(None, refusal="I'm sorry, I cannot assist with that request.")
    verdict = run(HeuristicsCheck(), request(), resp)
    assert verdict.score == 0.0 and verdict.reason.startswith("model refused")


def test_heuristics_ignores_refusal_words_deep_in_a_long_answer() -> None:
    answer = "Here is how TLS works. " * 20 + "Note: I cannot help with that part offline."
    assert run(HeuristicsCheck(), request("Explain TLS."), completion(answer)).score == 1.0


def test_heuristics_refusal_patterns_extend_the_defaults() -> None:
    check = HeuristicsCheck.from_options({"refusal_patterns": [r"\bnon posso\b"]})
    assert run(check, request(), completion("Mi dispiace, non posso aiutarti.")).score == 0.0
    assert run(check, request(), completion("I can't help with that.")).score == 0.0


def test_heuristics_rejects_a_short_answer_to_an_open_question() -> None:
    verdict = run(HeuristicsCheck(), request("Explain how vaccines work."), completion("Well."))
    assert not verdict.hard_fail
    assert verdict.score == pytest.approx(5 / 40)
    assert "too short: 5 chars" in verdict.reason


def test_heuristics_length_floor_grows_with_the_question_and_is_capped() -> None:
    check = HeuristicsCheck(min_chars=10, min_ratio=0.5, max_required_chars=100)
    question = "Summarise this: " + "word " * 20  # 116 chars -> 58 wanted
    assert run(check, request(question), completion("x" * 57)).score < 1.0
    assert run(check, request(question), completion("x" * 58)).score == 1.0
    huge = "Summarise this: " + "word " * 1000  # the cap (100) applies
    assert run(check, request(huge), completion("x" * 100)).score == 1.0


def test_heuristics_reads_content_parts() -> None:
    parts = [{"type": "text", "text": "What colour is the sky?"}, {"type": "image_url"}]
    req = {"model": "m", "messages": [{"role": "user", "content": parts}]}
    assert run(HeuristicsCheck(), req, completion("Blue.")).score == 1.0


# --- format ---------------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "role": {"enum": ["admin", "user"]},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "role"],
    "additionalProperties": False,
}
GOOD_PERSON = {
    "name": "Ada",
    "age": 36,
    "role": "admin",
    "address": {"city": "London", "zip": None},
    "tags": ["math", "engines"],
}


def schema_request() -> dict[str, Any]:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "person", "strict": True, "schema": PERSON},
    }
    return request("Describe Ada Lovelace as JSON.", response_format=response_format)


def test_format_abstains_when_nothing_format_related_was_asked() -> None:
    assert run(FormatCheck(), request(), completion("4")) is None
    text_format = request(response_format={"type": "text"})
    assert run(FormatCheck(), text_format, completion("4")) is None


def test_format_json_object_valid_and_invalid() -> None:
    req = request("Give me a JSON object.", response_format={"type": "json_object"})
    assert run(FormatCheck(), req, completion('{"answer": 4}')).score == 1.0
    for bad, why in [
        ('{"answer": 4', "invalid JSON"),
        ("[1, 2]", "not an object"),
        ('```json\n{"a": 1}\n```', "code fence"),
        ("Sure! Here it is.", "invalid JSON"),
    ]:
        verdict = run(FormatCheck(), req, completion(bad))
        assert verdict.hard_fail and why in verdict.reason, bad
    assert run(FormatCheck(), req, completion(None)).hard_fail


def test_format_json_schema_accepts_a_valid_nested_answer() -> None:
    verdict = run(FormatCheck(), schema_request(), completion(json.dumps(GOOD_PERSON)))
    assert verdict == Verdict("format", 1.0, "JSON matches the schema")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"age": "36"}, "$.age: expected integer, got string"),
        ({"age": True}, "$.age: expected integer, got boolean"),
        ({"role": "root"}, '$.role: "root" is not one of ["admin", "user"]'),
        ({"address": {"zip": "N1"}}, "$.address: missing required property 'city'"),
        ({"address": {"city": "L", "planet": "Earth"}}, "$.address: unexpected property 'planet'"),
        ({"address": {"city": "L", "zip": 12}}, "$.address.zip: expected string or null"),
        ({"tags": ["a", 2]}, "$.tags[1]: expected string, got number"),
        ({"nickname": "Ada"}, "$: unexpected property 'nickname'"),
    ],
)
def test_format_json_schema_rejects_invalid_answers(change: dict[str, Any], error: str) -> None:
    verdict = run(FormatCheck(), schema_request(), completion(json.dumps(GOOD_PERSON | change)))
    assert verdict.hard_fail and verdict.score == 0.0
    assert verdict.reason.startswith(f"schema: {error}")


def test_format_json_schema_reports_a_missing_required_property() -> None:
    answer = {k: v for k, v in GOOD_PERSON.items() if k != "role"}
    verdict = run(FormatCheck(), schema_request(), completion(json.dumps(answer)))
    assert verdict.reason == "schema: $: missing required property 'role'"


def test_schema_validator_subset() -> None:
    assert schema_errors(3.0, {"type": "integer"}) == []
    assert schema_errors(3.5, {"type": "integer"}) == ["$: expected integer, got number"]
    assert schema_errors(1, {"enum": [True]}) != []  # JSON: 1 is not true
    assert schema_errors("b", {"const": "a"}) == ['$: expected "a", got "b"']
    assert schema_errors("x", {"type": "string", "pattern": "^y$"}) == []  # unknown: ignored
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert schema_errors(None, nullable) == []
    assert schema_errors(3, nullable) == ["$: matches none of the anyOf alternatives"]
    extra_schema = {"type": "object", "additionalProperties": {"type": "number"}}
    assert schema_errors({"a": "x"}, extra_schema) == ["$.a: expected number, got string"]
    assert len(schema_errors([1] * 20, {"items": {"type": "string"}})) == 5


def test_schema_validator_follows_local_refs_and_stops_on_cycles() -> None:
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["value"],
            }
        },
        "$ref": "#/$defs/node",
    }
    good = {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}
    assert schema_errors(good, tree) == []
    bad = {"value": 1, "children": [{"value": 2, "children": [{"value": "3"}]}]}
    assert schema_errors(bad, tree) == [
        "$.children[0].children[0].value: expected integer, got string"
    ]
    loop = {"anyOf": [{"$ref": "#"}]}
    assert schema_errors("x", loop) != []  # terminates


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def tool_call(name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": "call_Y2l0eSI6IlBhcmlz",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def tool_request(**extra: Any) -> dict[str, Any]:
    return request("What's the weather in Paris?", tools=[WEATHER_TOOL], **extra)


def test_format_accepts_good_tool_calls() -> None:
    calls = [tool_call("get_weather", '{"city": "Paris", "unit": "celsius"}')]
    resp = completion(None, tool_calls=calls, finish_reason="tool_calls")
    verdict = run(FormatCheck(), tool_request(), resp)
    assert verdict == Verdict("format", 1.0, "1 valid tool call(s)")


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (tool_call("get_wether", '{"city": "Paris"}'), "called unknown tool 'get_wether'"),
        (tool_call("get_weather", '{"city": "Paris"'), "tool 'get_weather' arguments: invalid"),
        (tool_call("get_weather", '"Paris"'), "tool 'get_weather' arguments: JSON is string"),
        (tool_call("get_weather", "{}"), "missing required property 'city'"),
        (tool_call("get_weather", '{"city": "Paris", "unit": "kelvin"}'), '$.unit: "kelvin"'),
        (tool_call("get_weather", '{"city": "Paris", "when": "now"}'), "unexpected property"),
    ],
)
def test_format_rejects_bad_tool_calls(call: dict[str, Any], reason: str) -> None:
    good = tool_call("get_weather", '{"city": "Lyon"}')
    resp = completion(None, tool_calls=[good, call], finish_reason="tool_calls")
    verdict = run(FormatCheck(), tool_request(), resp)
    assert verdict.hard_fail and reason in verdict.reason


def test_format_tool_choice_required_but_no_call() -> None:
    assert run(FormatCheck(), tool_request(), completion("It is sunny.")) is None
    verdict = run(FormatCheck(), tool_request(tool_choice="required"), completion("Sunny."))
    assert verdict.hard_fail and "required a tool call" in verdict.reason


# --- logprobs -------------------------------------------------------------------------


def token(text: str, logprob: float) -> dict[str, Any]:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": []}


def test_logprob_confidence_hand_example() -> None:
    # ln 0.9 + ln 0.5 + ln 0.8 = ln 0.36; mean = ln(0.36)/3 -> confidence 0.36 ** (1/3)
    tokens = [token("Paris", math.log(0.9)), token(" is", math.log(0.5)), token(".", math.log(0.8))]
    confidence = logprob_confidence(completion("Paris is.", logprobs=tokens))
    assert confidence is not None
    assert confidence.mean_prob == pytest.approx(0.36 ** (1 / 3))  # ≈ 0.7114
    assert confidence.min_prob == pytest.approx(0.5)
    assert confidence.tokens == 3
    verdict = run(LogprobsCheck(min_mean_prob=0.8), request(), completion("x", logprobs=tokens))
    assert verdict.score == pytest.approx(0.7114, abs=1e-4)
    assert verdict.reason == "mean token prob 0.71 < 0.80 (min 0.50, 3 tokens)"
    assert LogprobsCheck.needs_logprobs is True


def test_logprobs_abstains_without_logprobs() -> None:
    assert run(LogprobsCheck(), request(), completion("4")) is None
    assert run(LogprobsCheck(), request(), completion("4", logprobs=[])) is None


def test_logprobs_certain_answer_scores_one() -> None:
    verdict = run(LogprobsCheck(), request(), completion("4", logprobs=[token("4", 0.0)]))
    assert verdict.score == 1.0 and ">= 0.50" in verdict.reason


# --- judge ----------------------------------------------------------------------------

JUDGE_OUTPUTS = [
    ("The answer is correct and complete.\n\nRating: [[7]]", 7.0),
    ("Rating: 7", 7.0),
    ("Solid answer, 7/10", 7.0),
    ("**8**/10 — correct but terse.", 8.0),
    ("Score: 6.5", 6.5),
    ("I would rate this a 9.", 9.0),
    ("I'd give it an 8 overall.", 8.0),
    ("**Rating:** 8", 8.0),
    ("**Rating**: **4**\nMostly wrong.", 4.0),
    ("Overall score (1-10): 7", 7.0),
    ("Rating: [[ 10 ]]", 10.0),
    ("[[7/10]]", 7.0),
    ("Rating: 4/5", 8.0),
    ("Score: 85/100", 8.5),
    ("Good, 8 out of 10.", 8.0),
    ("9", 9.0),
    ("**6**.", 6.0),
    ("My rating is 5 because step 3 of 4 is wrong.", 5.0),
    # several numbers: the explicit pattern wins over the others
    ("It lists 3 of the 12 causes from 1914, so 2/10 would be harsh. Rating: [[5]]", 5.0),
    ("Initially Rating: [[3]]. On reflection the math holds. Rating: [[8]]", 8.0),
    ("Rating: [[11]] ... no wait, 7/10", 7.0),
    ("<think>Maybe 3/10? No, it's right.</think>\nRating: [[9]]", 9.0),
    # nothing usable
    ("Rating: [[11]]", None),
    ("Rating: 0", None),
    ("0/10", None),
    ("Rating: -3", None),
    ("The answer lists 3 steps and 12 items.", None),
    ("I cannot grade this answer.", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), JUDGE_OUTPUTS)
def test_parse_rating(text: str, expected: float | None) -> None:
    assert parse_rating(text) == expected


def test_rubric_asks_for_the_parsed_form_and_is_documented() -> None:
    assert "Rating: [[N]]" in RUBRIC and "1 =" in RUBRIC and "10 =" in RUBRIC
    assert parse_rating("Rating: [[6]]") == 6.0
    doc = (Path(__file__).parents[2] / "docs" / "cascade-checks.md").read_text()
    assert f"```text\n{RUBRIC}\n```" in doc


class FakeJudge:
    """Stands in for the judge model: records the messages, answers with fixed text."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls: list[list[dict[str, Any]]] = []

    async def __call__(self, messages: list[dict[str, Any]]) -> str:
        self.calls.append(messages)
        return self.reply


def test_judge_check_end_to_end() -> None:
    judge = FakeJudge("Correct: Paris is the capital of France.\nRating: [[10]]")
    req = request("What is the capital of France?")
    verdict = run(JudgeCheck(), req, completion("Paris."), judge)
    assert verdict == Verdict("judge", 1.0, "judge rated 10/10")
    [messages] = judge.calls
    assert messages[0] == {"role": "system", "content": RUBRIC}
    case = messages[1]["content"]
    assert "What is the capital of France?" in case and "Paris." in case
    assert "You are a helpful assistant." in case


def test_judge_check_scores_and_truncates() -> None:
    judge = FakeJudge("Partly right. Rating: [[4]]")
    check = JudgeCheck(max_answer_chars=50)
    verdict = run(check, request("Explain TCP."), completion("y" * 500), judge)
    assert verdict.score == pytest.approx(3 / 9)
    case = judge.calls[0][1]["content"]
    assert "y" * 50 in case and "y" * 51 not in case and "450 more characters" in case


def test_judge_check_abstains() -> None:
    assert run(JudgeCheck(), request(), completion("4"), FakeJudge("no idea")) is None
    assert run(JudgeCheck(), request(), completion("4"), None) is None
    call = tool_call("get_weather", '{"city": "Paris"}')
    judge = FakeJudge("Rating: [[9]]")
    assert run(JudgeCheck(), request(), completion(None, tool_calls=[call]), judge) is None
    assert judge.calls == []


# --- combine and build ----------------------------------------------------------------


def test_combine_rules() -> None:
    assert combine([]) == (1.0, "no check applied")
    assert combine([None, None]) == (1.0, "no check applied")
    ok = Verdict("heuristics", 1.0, "ok")
    unsure = Verdict("logprobs", 0.4, "mean token prob 0.40 < 0.50")
    judged = Verdict("judge", 0.7, "judge rated 7.3/10")
    score, reason = combine([ok, unsure, None, judged])
    assert score == 0.4
    assert reason == (
        "heuristics: ok; logprobs: mean token prob 0.40 < 0.50; judge: judge rated 7.3/10"
    )
    broken = Verdict("format", 0.0, "invalid JSON", hard_fail=True)
    assert combine([ok, broken, judged]) == (0.0, "format: invalid JSON")


def test_verdict_score_must_be_in_range() -> None:
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"outside 0\.\.1"):
            Verdict("x", bad, "r")


def test_build_checks_from_specs() -> None:
    built = build_checks(
        ["heuristics", {"name": "logprobs", "min_mean_prob": 0.6}, "format", "judge"],
        has_judge=True,
    )
    assert [c.name for c in built] == ["heuristics", "logprobs", "format", "judge"]
    assert [c.needs_logprobs for c in built] == [False, True, False, False]
    assert isinstance(built[1], LogprobsCheck) and built[1].min_mean_prob == 0.6


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["heuristic"], "unknown cascade check 'heuristic'"),
        ([{"name": "logprobs", "min_mean": 0.6}], "'logprobs': unknown option 'min_mean'"),
        ([{"name": "logprobs", "min_mean_prob": 1.5}], "'min_mean_prob' must be 0.0..1.0"),
        ([{"name": "logprobs", "min_mean_prob": "high"}], "'min_mean_prob' must be a number"),
        ([{"name": "heuristics", "min_chars": 2.5}], "'min_chars' must be a whole number"),
        ([{"name": "heuristics", "refusal_patterns": "no"}], "list of strings"),
        ([{"name": "heuristics", "refusal_patterns": ["(unclosed"]}], "'(unclosed'"),
        ([{"name": "format", "strict": True}], "'format': unknown option 'strict'"),
        ([{"name": "judge", "model": "gpt-4o-mini"}], "'judge': unknown option 'model'"),
        ([{"min_mean_prob": 0.6}], "expected a name"),
        ([42], "cascade check spec 42"),
        (["heuristics", "heuristics"], "'heuristics' is listed twice"),
        (["judge"], "the judge check needs cascade.judge_model"),
    ],
)
def test_build_checks_errors_name_the_bad_spec(specs: list[Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        build_checks(specs, has_judge=False)
    assert message in str(info.value)


def test_register_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks_module, "_REGISTRY", dict(checks_module._REGISTRY))

    class Always:
        name = "always"
        needs_logprobs = False

        def __init__(self, score: float) -> None:
            self.score = score

        async def __call__(self, req: Any, resp: Any, judge: Any) -> Verdict:
            return Verdict(self.name, self.score, "fixed")

    def factory(options: Mapping[str, Any]) -> Check:
        return Always(float(options.get("score", 1.0)))

    register_check("always", factory)
    assert "always" in registered_checks()
    [check] = build_checks([{"name": "always", "score": 0.25}])
    assert run(check, request(), completion()).score == 0.25
    with pytest.raises(ValueError, match="already registered"):
        register_check("always", factory)
    register_check("always", factory, replace=True)
