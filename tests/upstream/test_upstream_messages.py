"""The test upstream's ``/v1/messages``: Anthropic's shapes, auth and prompt caching."""

from __future__ import annotations

import anthropic
import pytest
from tests.conftest import ServerThread

from thrifty.upstream.app import UpstreamOptions, build_upstream_app

LONG = " ".join(f"Rule {n}: answer in plain words and cite the page." for n in range(160))


@pytest.fixture(scope="module")
def keyed_upstream():
    with ServerThread(build_upstream_app(UpstreamOptions(api_key="sk-ant-upstream"))) as server:
        yield server


def claude(server: ServerThread, key: str = "sk-ant-upstream") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)


def test_answers_in_anthropic_shape_and_checks_x_api_key(keyed_upstream: ServerThread) -> None:
    with claude(keyed_upstream) as client:
        message = client.messages.create(
            model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.type == "message" and message.content[0].type == "text"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    with (
        claude(keyed_upstream, "sk-ant-wrong") as client,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["error"]["type"] == "authentication_error"


def test_caches_only_marked_prefixes(keyed_upstream: ServerThread) -> None:
    def ask(marked: bool, question: str) -> anthropic.types.Usage:
        block = {"type": "text", "text": LONG}
        if marked:
            block["cache_control"] = {"type": "ephemeral"}
        with claude(keyed_upstream) as client:
            return client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=50,
                system=[block],
                messages=[{"role": "user", "content": question}],
            ).usage

    plain = ask(False, "first?")
    assert plain.cache_read_input_tokens == 0 and plain.cache_creation_input_tokens == 0
    assert ask(False, "second?").cache_read_input_tokens == 0  # never marked: never cached
    written = ask(True, "third?")
    assert written.cache_creation_input_tokens >= 1024 and written.cache_read_input_tokens == 0
    read = ask(True, "fourth?")
    assert read.cache_read_input_tokens == written.cache_creation_input_tokens
    assert read.cache_creation_input_tokens == 0
    # input_tokens excludes the cached part, as Anthropic reports it
    whole = ask(False, "fourth?").input_tokens
    assert read.input_tokens + read.cache_read_input_tokens == whole


def test_stream_events_in_order(keyed_upstream: ServerThread) -> None:
    with (
        claude(keyed_upstream) as client,
        client.messages.stream(
            model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.usage.output_tokens > 0 and final.content[0].text
