"""``previous_response_id`` on a real ``thrifty serve --workers 2``: follow-ups reach both
workers (each request on a new connection; the worker is read from /proc) and every one
continues the whole conversation, from the SQLite file the workers share."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest
import yaml
from tests.conftest import ServerThread

from thrifty.cli.processes import free_port, wait_healthy

THRIFTY = [sys.executable, "-m", "thrifty.cli.main"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


class Gateway:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    def worker_of(self, client_port: int) -> int:
        """The pid of the worker holding the gateway's end of the connection from
        ``client_port`` (``/proc/net/tcp`` gives its inode, ``/proc/<pid>/fd`` the owner)."""
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(f.split(":")[1], 16) for f in fields[1:3])
            if local == self.port and remote == client_port:
                inodes.add(f"socket:[{fields[9]}]")
        for pid in self._children():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    if str(fd.readlink()) in inodes:
                        return pid
                except OSError:
                    continue
        raise AssertionError(f"no worker holds the connection from port {client_port}")

    def _children(self) -> list[int]:
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return children


@pytest.fixture
def two_workers(tmp_path: Path, upstream: ServerThread) -> Iterator[Gateway]:
    port = free_port()
    config = {  # server.workers unset (1): the command line's --workers must win
        "server": {"port": port},
        "auth": {"keys": ["key-a", "key-b"]},
        "providers": {"up": {"base_url": f"{upstream.url}/v1"}},
        "models": {"gpt-4o-mini": {"provider": "up"}},
        "ledger": {"path": str(tmp_path / "ledger.db"), "flush_interval_ms": 200},
        "logging": {"level": "warning"},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen([*THRIFTY, "serve", "--config", str(path), "--workers", "2"])
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process, timeout=30)
        yield Gateway(process, port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def client(gateway: Gateway, key: str, served: Counter[int]) -> openai.OpenAI:
    """An SDK client opening a new connection per request, counting who served each."""

    def record(response: httpx.Response) -> None:
        stream: Any = response.extensions["network_stream"]
        served[gateway.worker_of(stream.get_extra_info("client_addr")[1])] += 1

    http_client = httpx.Client(
        limits=httpx.Limits(max_keepalive_connections=0), event_hooks={"response": [record]}
    )
    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{gateway.port}/v1", api_key=key, max_retries=0,
        http_client=http_client,
    )  # fmt: skip


def test_follow_ups_continue_on_either_worker(
    two_workers: Gateway, upstream: ServerThread, tmp_path: Path
) -> None:
    served: Counter[int] = Counter()
    conversation: list[dict[str, Any]] = []
    input_tokens: list[int] = []
    with client(two_workers, "key-a", served) as sdk:
        previous = None
        turn = 0
        # until each worker has continued the conversation several times
        while turn < 12 or ((len(served) < 2 or min(served.values()) < 4) and turn < 200):
            text = f"Turn {turn}: say something."
            response = sdk.responses.create(
                model="gpt-4o-mini", input=text, previous_response_id=previous
            )
            assert response.status == "completed" and response.previous_response_id == previous
            conversation += [
                {"role": "user", "content": text},
                {"role": "assistant", "content": response.output_text},
            ]
            input_tokens.append(response.usage.input_tokens)
            previous, turn = response.id, turn + 1
        with sdk.responses.stream(
            model="gpt-4o-mini", input="And streamed?", previous_response_id=previous
        ) as stream:
            streamed = stream.get_final_response()
        last = sdk.responses.create(
            model="gpt-4o-mini", input="Last one.", previous_response_id=streamed.id
        )
    assert len(served) == 2 and min(served.values()) >= 4, served
    assert input_tokens == sorted(input_tokens) and len(set(input_tokens)) == len(input_tokens)
    conversation += [
        {"role": "user", "content": "And streamed?"},
        {"role": "assistant", "content": streamed.output_text},
        {"role": "user", "content": "Last one."},
    ]
    with openai.OpenAI(base_url=f"{upstream.url}/v1", api_key="x") as direct:
        expected = direct.chat.completions.create(model="gpt-4o-mini", messages=conversation)
    assert last.output_text == expected.choices[0].message.content
    assert (tmp_path / "ledger.responses.db").is_file()


def test_another_key_gets_404_on_every_worker(two_workers: Gateway) -> None:
    served: Counter[int] = Counter()
    with client(two_workers, "key-a", served) as mine, client(
        two_workers, "key-b", served
    ) as theirs:
        stored = mine.responses.create(model="gpt-4o-mini", input="Remember me.")
        unstored = mine.responses.create(model="gpt-4o-mini", input="Forget me.", store=False)
        served.clear()
        attempts = 0
        while attempts < 8 or (len(served) < 2 and attempts < 200):
            with pytest.raises(openai.NotFoundError) as caught:
                theirs.responses.create(
                    model="gpt-4o-mini", input="Who?", previous_response_id=stored.id
                )
            assert caught.value.body["code"] == "previous_response_not_found"
            with pytest.raises(openai.NotFoundError):
                mine.responses.create(
                    model="gpt-4o-mini", input="Who?", previous_response_id=unstored.id
                )
            attempts += 1
        assert len(served) == 2, served
        again = mine.responses.create(
            model="gpt-4o-mini", input="Who?", previous_response_id=stored.id
        )
    assert again.status == "completed"
