"""The test upstream's packed answers, packed-only faults, and its Files/Batch APIs."""

from __future__ import annotations

import json

import openai
import pytest
from tests.conftest import ServerThread, http

from thrifty.batching.config import BatchingConfig
from thrifty.batching.packing import make_labels, pack_questions, parse_answers
from thrifty.config import parse_config
from thrifty.errors import ConfigError
from thrifty.upstream import rule_text
from thrifty.upstream.app import UpstreamOptions, build_upstream_app

QUESTIONS = ["Why do cats purr?", "What is 12 squared?", "Name a noble gas."]


def test_packed_prompt_answered_item_by_item(upstream: ServerThread) -> None:
    labels = make_labels(len(QUESTIONS))
    system = {"role": "system", "content": "Be brief."}
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x") as client:
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[system, {"role": "user", "content": pack_questions(QUESTIONS, labels)}],
        )
    parsed = parse_answers(reply.choices[0].message.content or "", labels)
    assert parsed.answers == {
        i: rule_text("gpt-4o-mini", [system, {"role": "user", "content": q}])
        for i, q in enumerate(QUESTIONS)
    }


def test_packed_faults_fire_only_on_packed_prompts() -> None:
    options = UpstreamOptions(model_faults={"gpt-4o": "drop;times=1;item=1"})
    with (
        ServerThread(build_upstream_app(options)) as up,
        openai.OpenAI(base_url=f"{up.url}/v1", api_key="x") as client,
    ):
        plain = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTIONS[0]}]
        )
        assert plain.choices[0].message.content == rule_text(
            "gpt-4o", [{"role": "user", "content": QUESTIONS[0]}]
        )
        labels = make_labels(3)
        packed = [{"role": "user", "content": pack_questions(QUESTIONS, labels)}]
        first = client.chat.completions.create(model="gpt-4o", messages=packed)
        second = client.chat.completions.create(model="gpt-4o", messages=packed)
        stats = http("GET", f"{up.url}/_stats")[2]
    assert set(parse_answers(first.choices[0].message.content or "", labels).answers) == {1, 2}
    assert set(parse_answers(second.choices[0].message.content or "", labels).answers) == {
        0,
        1,
        2,
    }
    assert stats["faults"] == {"drop": 1}


def test_upstream_files_and_batches_errors(upstream: ServerThread) -> None:
    base = f"{upstream.url}/v1"
    create = {"input_file_id": "file-x", "endpoint": "/v1/chat/completions",
              "completion_window": "24h"}  # fmt: skip
    status, _, body = http("POST", f"{base}/batches", create)
    assert status == 400 and body["error"]["param"] == "input_file_id"
    assert http("GET", f"{base}/batches/batch_nope")[0] == 404
    assert http("GET", f"{base}/files/file-nope")[0] == 404
    status, _, body = http("POST", f"{base}/files", raw=b"x",
                           headers={"content-type": "text/plain"})  # fmt: skip
    assert status == 400 and "multipart" in body["error"]["message"]


def test_upstream_batch_answers_lines_like_chat(upstream: ServerThread) -> None:
    lines = [
        {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": QUESTIONS[0]}]}},
        {"custom_id": "b", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o", "messages": []}},
    ]  # fmt: skip
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x") as client:
        file = client.files.create(file=("in.jsonl", content), purpose="batch")
        batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")  # fmt: skip
        while batch.status != "completed":
            batch = client.batches.retrieve(batch.id)
        assert batch.request_counts is not None
        assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 1)
        assert batch.output_file_id and batch.error_file_id
        out = json.loads(client.files.content(batch.output_file_id).text)
        err = json.loads(client.files.content(batch.error_file_id).text)
    assert out["response"]["body"]["choices"][0]["message"]["content"] == rule_text(
        "gpt-4o", [{"role": "user", "content": QUESTIONS[0]}]
    )
    assert err["custom_id"] == "b" and err["response"]["status_code"] == 400


def test_batching_config_names_bad_keys() -> None:
    minimal = {"providers": {"p": {"base_url": "http://127.0.0.1:1/v1"}},
               "models": {"gpt-4o-mini": {"provider": "p"}}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"batching\.window\.window_sm"):
        parse_config({**minimal, "batching": {"window": {"window_sm": 100}}}, {})
    with pytest.raises(ConfigError, match="batching"):
        parse_config({**minimal, "batching": {"enabled": True}}, {})
    with pytest.raises(ConfigError, match=r"batching\.packing\.max_batch_size"):
        parse_config({**minimal, "batching": {"packing": {"max_batch_size": 1}}}, {})
    config = BatchingConfig.for_tests()
    assert config.window_on and config.jobs_on
    assert not BatchingConfig().window_on
