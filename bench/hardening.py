"""What hostile input and a locked store cost the gateway: this tree vs a baseline tree.

Each case runs against ``thrifty serve`` from this tree and, with ``--baseline-src``,
from another source tree (for example ``main`` before the hardening, issue 16), in the
same run, one gateway at a time, on the same upstream:

* ``body``: peak RSS while a ``--body-mb`` chunked body is POSTed to ``/v1/batches``
  (any key may call it), against the gateway's RSS before;
* ``headers``: RSS after 4 connections each send a ``--header-mb`` header that never
  ends (unauthenticated);
* ``stall``: the longest ``/health`` response while ``/admin/keys`` creates a key and
  another connection holds ``keys.db`` write-locked for ``--lock-s`` seconds.

    python -m bench.hardening [--baseline-src ../main/src] [--body-mb 400] [--header-mb 100]

Writes ``bench/results/<date>-hardening.{md,json}``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import socket
import sqlite3
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench.reporting import result_stem, write_results
from bench.servers import THRIFTY, Server, spawn
from thrifty.cli.processes import free_port

KEY, ADMIN = "bench-key", "bench-admin"


def start(workdir: Path, name: str, up_port: int, src: str | None) -> tuple[Server, int]:
    port = free_port()
    config = {
        "server": {"port": port},
        "auth": {"keys": [KEY], "admin_keys": [ADMIN]},
        "providers": {"up": {"base_url": f"http://127.0.0.1:{up_port}/v1"}},
        "models": {"gpt-4o-mini": {"provider": "up"}},
        "ledger": {"path": str(workdir / f"{name}-ledger.db")},
        "governance": {"keys_path": str(workdir / f"{name}-keys.db")},
        "batching": {"enabled": True,
                     "jobs": {"enabled": True, "path": str(workdir / f"{name}-jobs.db")}},
        "logging": {"level": "warning"},
    }  # fmt: skip
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {"PYTHONPATH": src} if src else None
    argv = [*THRIFTY, "serve", "--config", str(path), "--workers", "1"]
    return spawn(name, argv, 0, f"http://127.0.0.1:{port}/health", workdir, env), port


def body_case(server: Server, port: int, megabytes: int) -> dict[str, Any]:
    before = server.rss_mb()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.rss_mb())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    chunk = b"a" * (1 << 20)

    def body() -> Any:
        yield b'{"input_file_id": "'
        for _ in range(megabytes):
            yield chunk

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    started = time.perf_counter()
    status = None
    with contextlib.suppress(OSError):
        conn.request("POST", "/v1/batches", body=body(), encode_chunked=True,
                     headers={"authorization": f"Bearer {KEY}"})  # fmt: skip
    with contextlib.suppress(OSError, http.client.HTTPException):
        status = conn.getresponse().status
    conn.close()
    seconds = time.perf_counter() - started
    time.sleep(0.5)
    done.set()
    sampler.join()
    return {"status": status, "rss_before_mb": before, "rss_peak_mb": peak,
            "rss_added_mb": round(peak - before, 1), "seconds": round(seconds, 2)}  # fmt: skip


def header_case(server: Server, port: int, megabytes: int) -> dict[str, Any]:
    before = server.rss_mb()
    socks = []
    refused = 0
    for _ in range(4):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: ")
        try:
            for _ in range(megabytes * 16):
                sock.sendall(b"a" * 65_536)
        except OSError:
            refused += 1
        socks.append(sock)
    time.sleep(0.5)
    after = server.rss_mb()
    for sock in socks:
        sock.close()
    return {"connections": 4, "refused": refused, "rss_before_mb": before,
            "rss_after_mb": after, "rss_added_mb": round(after - before, 1)}  # fmt: skip


def stall_case(port: int, keys_db: Path, lock_s: float) -> dict[str, Any]:
    worst = 0.0
    result: dict[str, Any] = {}

    def create() -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/admin/keys", data=b'{"owner": "x"}', method="POST",
            headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=120) as resp:
                result["status"] = resp.status
        except urllib.error.HTTPError as exc:
            result["status"] = exc.code

    db = sqlite3.connect(keys_db, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    creator = threading.Thread(target=create, daemon=True)
    creator.start()
    deadline = time.monotonic() + lock_s
    while time.monotonic() < deadline:
        started = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=120) as resp:
            resp.read()
        worst = max(worst, time.perf_counter() - started)
        time.sleep(0.05)
    db.execute("ROLLBACK")
    db.close()
    creator.join(60)
    return {"lock_s": lock_s, "health_worst_ms": round(worst * 1000, 1),
            "admin_status": result.get("status")}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    trees = {"this tree": None}
    if args.baseline_src:
        trees["baseline"] = str(Path(args.baseline_src).resolve())
    out: dict[str, Any] = {"args": vars(args), "trees": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        up_port = free_port()
        upstream = spawn("upstream", [*THRIFTY, "upstream", "--port", str(up_port)], 1,
                         f"http://127.0.0.1:{up_port}/health", workdir)  # fmt: skip
        try:
            for label, src in trees.items():
                name = label.replace(" ", "-")
                cases: dict[str, Any] = {}
                for case in ("body", "headers", "stall"):
                    server, port = start(workdir, f"{name}-{case}", up_port, src)
                    try:
                        if case == "body":
                            cases[case] = body_case(server, port, args.body_mb)
                        elif case == "headers":
                            cases[case] = header_case(server, port, args.header_mb)
                        else:
                            keys_db = workdir / f"{name}-{case}-keys.db"
                            cases[case] = stall_case(port, keys_db, args.lock_s)
                    finally:
                        server.stop()
                out["trees"][label] = cases
        finally:
            upstream.stop()
    return out


def write_report(result: dict[str, Any]) -> Path:
    stem = result_stem("hardening")
    lines = ["# Hardening: hostile input and a locked store, same run", ""]
    lines += ["| tree | body: status, RSS added (MB) | headers: refused, RSS added (MB) | "
              "/health worst while keys.db locked (ms), admin status |",
              "|---|---|---|---|"]  # fmt: skip
    for label, cases in result["trees"].items():
        body, headers, stall = cases["body"], cases["headers"], cases["stall"]
        lines.append(
            f"| {label} | {body['status']}, {body['rss_added_mb']} | "
            f"{headers['refused']}/4, {headers['rss_added_mb']} | "
            f"{stall['health_worst_ms']}, {stall['admin_status']} |"
        )
    lines += ["", f"Body {result['args']['body_mb']} MB chunked to /v1/batches; 4 headers of "
              f"{result['args']['header_mb']} MB; keys.db locked "
              f"{result['args']['lock_s']} s.", "",
              "The lock is released only once the last /health probe has returned: on a "
              "tree whose admin write blocks the event loop, the probe then waits for "
              "SQLite's busy timeout (30 s), after which the admin call fails.", ""]  # fmt: skip
    return write_results(stem, result, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", help="another tree's src/ to compare with")
    parser.add_argument("--body-mb", type=int, default=400)
    parser.add_argument("--header-mb", type=int, default=100)
    parser.add_argument("--lock-s", type=float, default=3.0)
    args = parser.parse_args()
    os.environ.setdefault("THRIFTY_CI", "1")
    path = write_report(run(args))
    print(path.read_text())


if __name__ == "__main__":
    main()
