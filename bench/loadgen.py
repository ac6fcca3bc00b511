"""The load generator of the benches: ``wrk`` when installed, else a Python async client.

``wrk`` (C, one thread, pinned with ``taskset``) is the default because a Python client
tops out near the gateway's own rate and then measures itself. When ``wrk`` is missing
(Debian: ``apt-get install -y wrk``), :func:`run_load` falls back to the aiohttp client
in this process and says so in :attr:`LoadResult.generator`, so a report never hides
which one produced its numbers. Both send the same POST body closed-loop on
``connections`` keep-alive connections and report requests/s and latency percentiles.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.servers import pinned

LUA_SCRIPT = Path(__file__).with_name("post.lua")
FALLBACK_NOTE = (
    "wrk not found (Debian: `apt-get install -y wrk`); the Python aiohttp client was used "
    "instead, and at high concurrency it may be the bottleneck"
)


@dataclass
class LoadResult:
    """One closed-loop load run against one URL."""

    generator: str  # "wrk" | "python"
    connections: int
    seconds: float
    requests: int
    errors: int  # non-2xx answers, socket errors and timeouts
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_load(
    url: str,
    body: bytes,
    *,
    connections: int,
    seconds: float,
    auth: str | None = None,
    core: int | None = None,
    warmup: float = 1.0,
    use_wrk: bool | None = None,
) -> LoadResult:
    """``warmup`` seconds of load (discarded), then ``seconds`` measured.

    ``core`` pins the generator (wrk via ``taskset``; the Python client by setting this
    process's affinity for the run). ``use_wrk=None`` means: wrk when installed.
    """
    if use_wrk is None:
        use_wrk = have_wrk()
    if use_wrk:
        if warmup > 0:
            _wrk(url, body, connections, warmup, auth, core)
        return _wrk(url, body, connections, seconds, auth, core)
    python_run = _python(url, body, connections, seconds, auth, warmup)
    return _with_affinity(core, lambda: asyncio.run(python_run))


# ---------------------------------------------------------------- wrk


def _wrk(
    url: str, body: bytes, connections: int, seconds: float, auth: str | None, core: int | None
) -> LoadResult:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        fh.write(body)
        body_path = fh.name
    env = {**os.environ, "BENCH_BODY_FILE": body_path, "BENCH_AUTH": auth or ""}
    argv = [*pinned(core), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    argv += ["--timeout", "10s", "-s", str(LUA_SCRIPT), url]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=env,
            timeout=seconds + 60,
            start_new_session=True,  # own scheduler autogroup, as the servers (bench.servers)
        )
    finally:
        os.unlink(body_path)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    elapsed = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors", "non2xx"))
    return LoadResult(
        generator="wrk",
        connections=connections,
        seconds=round(elapsed, 2),
        requests=data["requests"],
        errors=errors + data["timeouts"],
        rps=round((data["requests"] - data["non2xx"]) / elapsed, 1),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )


# ---------------------------------------------------------------- Python fallback


def _with_affinity(core: int | None, fn: Any) -> LoadResult:
    if core is None or not hasattr(os, "sched_setaffinity") or not pinned(core):
        return fn()
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        return fn()
    finally:
        os.sched_setaffinity(0, before)


async def _python(
    url: str, body: bytes, connections: int, seconds: float, auth: str | None, warmup: float
) -> LoadResult:
    headers = {"content-type": "application/json"}
    if auth:
        headers["authorization"] = auth
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(stop: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        ok = resp.status < 400
                except aiohttp.ClientError:
                    ok = False
                if record:
                    if ok:
                        latencies.append((time.perf_counter() - start) * 1000)
                    else:
                        errors += 1

        if warmup > 0:
            stop = time.perf_counter() + warmup
            await asyncio.gather(*(worker(stop, False) for _ in range(connections)))
        started = time.perf_counter()
        stop = started + seconds
        await asyncio.gather(*(worker(stop, True) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]
    return LoadResult(
        generator="python",
        connections=connections,
        seconds=round(elapsed, 2),
        requests=len(latencies) + errors,
        errors=errors,
        rps=round(len(latencies) / elapsed, 1),
        p50_ms=round(statistics.median(ordered), 3),
        p90_ms=round(percentile(ordered, 0.90), 3),
        p99_ms=round(percentile(ordered, 0.99), 3),
        max_ms=round(ordered[-1], 3),
    )


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
