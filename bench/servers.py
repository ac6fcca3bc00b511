"""Servers under test as subprocesses: pinned to a core, health-checked, measured, stopped.

Each server (and the ``wrk`` load generator) starts in its own session. With Linux's
scheduler autogroups (``/proc/sys/kernel/sched_autogroup_enabled``), CPU time is shared
fairly between sessions first; servers left in the bench's own session share one
group's weight, split across cores by load, and on a machine busy with other work the
gateway's wake-up latency then depended on how busy the *upstream's* core was (measured:
c=1 p50 moved 2-3x with an unrelated change to the gateway's background thread).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

THRIFTY = [sys.executable, "-m", "thrifty.cli.main"]


def pinned(core: int | None) -> list[str]:
    """The ``taskset`` prefix that pins a command to ``core`` (empty when unavailable)."""
    if core is None or not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        return []
    return ["taskset", "-c", str(core)]


@dataclass
class Server:
    """A server subprocess and the log file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        """Resident memory of the process and its children, in MB (Linux ``/proc``)."""
        total = 0
        pids = [self.process.pid]
        while pids:
            pid = pids.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            pids.extend(int(child) for child in children)
        return round(total / 1024, 1)

    def cpu_seconds(self) -> float:
        """CPU time (user + system, all threads) the process has used so far (Linux).

        CPU per request is steadier than requests/s on a machine shared with other work:
        it does not count the time the process waited for a core.
        """
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Terminate and wait; kill if it lingers."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def spawn(
    name: str,
    argv: list[str],
    core: int | None,
    health_url: str,
    workdir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Server:
    """Start ``argv`` pinned to ``core`` and wait until ``health_url`` answers 200."""
    log = workdir / f"{name}.log"
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DATABASE_URL", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*pinned(core), *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,  # own scheduler autogroup: see the module docstring
        )
    server = Server(name, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(health_url, timeout=1) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not answer {health_url} in {timeout:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
