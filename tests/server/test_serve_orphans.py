"""``kill -9`` of ``thrifty serve``'s master leaves no worker serving (issue 16, item 17):
each worker exits when the process that started it dies."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
from tests.server.test_serve_process import start_gateway

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for the workers"),
]


def children(pid: int) -> set[int]:
    """Every live process whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def test_workers_exit_when_the_master_is_killed(tmp_path: Path) -> None:
    # the gateway needs no upstream to serve /health; port 9 is refused
    master, port, _ = start_gateway(tmp_path, upstream_port=9, workers=2)
    workers = children(master.pid)
    try:
        assert len(workers) >= 2, workers
        os.kill(master.pid, signal.SIGKILL)
        master.wait(timeout=5)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and any(alive(w) for w in workers):
            time.sleep(0.1)
        assert not {w for w in workers if alive(w)}, "orphaned workers still running"
        with socket.socket() as probe:  # nothing serves the port any more
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    finally:
        for worker in workers:
            if alive(worker):
                os.kill(worker, signal.SIGKILL)
