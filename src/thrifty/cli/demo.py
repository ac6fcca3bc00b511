"""``thrifty demo``: the gateway end to end on this machine, no API key needed.

Starts the test upstream and the gateway (``examples/local.yaml`` semantics) as real
processes, sends a small mixed workload through the official ``openai`` SDK — plain,
streamed, embeddings, a request whose primary deployment is down — then prints the
ledger report. The replay/tune work grows this into a savings demo.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

PROMPTS = [
    "Give me three names for a bakery that sells only sourdough.",
    "Translate 'where is the train station?' into French and Spanish.",
    "Write a Python function that checks whether a string is a palindrome.",
    "What is 17 times 23? Show the steps.",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "Classify the sentiment of: 'The delivery was late but the food was great.'",
    "Explain what a hash map is to a ten-year-old.",
    "Write a haiku about autumn rain.",
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "demo", help="run the gateway end to end against the test upstream"
    )
    parser.add_argument("--workdir", help="where to keep the ledger (default: a temp dir)")
    parser.set_defaults(func=run)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not become healthy")


def _config(upstream_port: int, gateway_port: int, ledger: Path) -> dict:
    return {
        "server": {"host": "127.0.0.1", "port": gateway_port},
        "auth": {"keys": ["demo-key"]},
        "providers": {
            "local": {"base_url": f"http://127.0.0.1:{upstream_port}/v1", "price_prefix": "openai"},
            "offline": {"base_url": "http://127.0.0.1:9/v1", "connect_timeout_s": 1},
        },
        "models": {
            "gpt-4o": {"provider": "local"},
            "gpt-4o-mini": {"provider": "local"},
            "text-embedding-3-small": {"provider": "local"},
            "gpt-4o-mini-ha": {
                "deployments": [
                    {"provider": "offline", "model": "gpt-4o-mini"},
                    {"provider": "local", "model": "gpt-4o-mini"},
                ]
            },
        },
        "baseline_model": "gpt-4o",
        "retries": {"max_attempts": 2, "backoff_initial_s": 0.05},
        "ledger": {"path": str(ledger)},
        "logging": {"level": "error"},
    }


def _workload(base_url: str) -> None:
    import openai

    with openai.OpenAI(base_url=base_url, api_key="demo-key") as client:
        for index, prompt in enumerate(PROMPTS):
            messages = [{"role": "user", "content": prompt}]
            model = "gpt-4o" if index % 2 == 0 else "gpt-4o-mini"
            if index % 3 == 0:
                stream = client.chat.completions.create(model=model, messages=messages, stream=True)
                text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            else:
                text = (
                    client.chat.completions.create(model=model, messages=messages)
                    .choices[0]
                    .message.content
                    or ""
                )
            print(f"  {model:<12} {prompt[:48]:<48} -> {text[:40]!r}")
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini-ha", messages=[{"role": "user", "content": "Are you there?"}]
        )
        print(f"  gpt-4o-mini-ha (first deployment offline) answered by the second, "
              f"cost ${raw.headers['x-thrifty-cost']}")  # fmt: skip
        client.embeddings.create(model="text-embedding-3-small", input=PROMPTS)
        print(f"  text-embedding-3-small: {len(PROMPTS)} embeddings")


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="thrifty-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = workdir / "ledger.db"
    upstream_port, gateway_port = _free_port(), _free_port()
    config_path = workdir / "demo.yaml"
    config_path.write_text(yaml.safe_dump(_config(upstream_port, gateway_port, ledger)))
    thrifty = [sys.executable, "-m", "thrifty.cli.main"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    upstream = subprocess.Popen([*thrifty, "upstream", "--port", str(upstream_port)], env=env)
    gateway = subprocess.Popen([*thrifty, "serve", "--config", str(config_path)], env=env)
    try:
        _wait_healthy(f"http://127.0.0.1:{upstream_port}", upstream)
        _wait_healthy(f"http://127.0.0.1:{gateway_port}", gateway)
        print(f"gateway on http://127.0.0.1:{gateway_port}/v1, test upstream on :{upstream_port}")
        print("sending requests through the gateway with the official openai SDK:")
        _workload(f"http://127.0.0.1:{gateway_port}/v1")
    finally:
        for process in (gateway, upstream):
            process.terminate()
        for process in (gateway, upstream):
            process.wait(timeout=30)
    print(f"\nledger report ({ledger}):")
    sys.stdout.flush()
    return subprocess.call([*thrifty, "report", "--ledger", str(ledger), "--by", "model"])
