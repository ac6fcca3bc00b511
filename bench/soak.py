"""Soak: minutes of steady load through the gateway (ledger on), its memory sampled.

The gateway (1 worker, core 0) serves a closed loop of ``--concurrency`` clients (``wrk``,
or the Python generator when wrk is missing) from the test upstream (core 1) for
``--minutes``. A thread samples the gateway's RSS every ``--interval`` seconds. The report
gives RSS before the load, at its peak and at the end, and the least-squares slope of RSS
over time after the first minute (warm-up: pools, caches and the allocator's arenas fill
then). Flat means the slope is within noise of zero: a leak shows up as MB per minute.
At the end the ledger must hold one row per answered request (its writer kept up and
lost nothing). Writes ``bench/results/<date>-soak.{md,json}``. Usage::

    python -m bench.soak [--minutes 5] [--concurrency 32] [--interval 5] [--no-wrk]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.loadgen import FALLBACK_NOTE, have_wrk, run_load
from bench.passthrough import AUTH, BODY, UPSTREAM_CORE, start_gateway, start_upstream
from bench.reporting import result_stem, write_results

WARMUP_S = 60.0


class RSSSampler(threading.Thread):
    """Every ``interval`` seconds until stopped: ``(seconds, RSS MB)`` into ``samples`` and
    the ledger records not yet written (``/health``'s ``ledger_pending``) into ``pending``:
    a writer falling behind holds records in memory, which is growth but not a leak."""

    def __init__(self, rss: Any, health_url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self._rss = rss
        self._health = health_url
        self._interval = interval
        self._done = threading.Event()
        self.samples: list[tuple[float, float]] = []
        self.pending: list[int | None] = []

    def run(self) -> None:
        start = time.monotonic()
        while not self._done.is_set():
            self.samples.append((round(time.monotonic() - start, 1), self._rss()))
            self.pending.append(_ledger_pending(self._health))
            self._done.wait(self._interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _ledger_pending(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(json.loads(resp.read())["ledger_pending"])
    except (OSError, ValueError, KeyError):
        return None


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of RSS over time, in MB per minute (None: too few samples)."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_r = sum(r for _, r in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (r - mean_r) for t, r in samples)
    return round(cov / var * 60, 3)


def ledger_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])


def run(args: argparse.Namespace) -> dict[str, Any]:
    use_wrk = have_wrk() and not args.no_wrk
    workdir = Path(tempfile.mkdtemp(prefix="thrifty-soak-"))
    upstream, up_port = start_upstream(workdir)
    try:
        gateway, url = start_gateway(workdir, "gateway", up_port)
        try:
            rss_before = gateway.rss_mb()
            health = url.replace("/v1/chat/completions", "/health")
            sampler = RSSSampler(gateway.rss_mb, health, args.interval)
            cpu_before = gateway.cpu_seconds()
            sampler.start()
            load = run_load(
                url,
                BODY,
                connections=args.concurrency,
                seconds=args.minutes * 60,
                auth=AUTH,
                core=UPSTREAM_CORE,
                warmup=0,
                use_wrk=use_wrk,
            )
            sampler.stop()
            cpu_used = gateway.cpu_seconds() - cpu_before
        finally:
            gateway.stop()  # graceful: the ledger is flushed before it exits
        rows = ledger_rows(workdir / "gateway.db")
    finally:
        upstream.stop()
    samples = sampler.samples
    steady = [(t, r) for t, r in samples if t >= WARMUP_S]
    answered = load.requests - load.errors
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at the end",
        "generator": load.generator,
        "note": None if use_wrk else FALLBACK_NOTE,
        "settings": {
            "minutes": args.minutes,
            "concurrency": args.concurrency,
            "interval_s": args.interval,
        },
        "load": load.to_dict(),
        "gateway_cpu_us_per_request": round(cpu_used / max(load.requests, 1) * 1e6, 1),
        "rss_mb": {
            "before_load": rss_before,
            "first_sample": samples[0][1] if samples else None,
            "peak": max((r for _, r in samples), default=None),
            "end": samples[-1][1] if samples else None,
            "after_warmup_min": min((r for _, r in steady), default=None),
            "after_warmup_max": max((r for _, r in steady), default=None),
            "slope_after_warmup_mb_per_min": slope_mb_per_min(steady),
        },
        # Rows may exceed the answered count by up to c: requests in flight when the load
        # stopped are still served (or recorded as cancelled), but wrk never counts them.
        "ledger": {"rows": rows, "answered_requests": answered, "missing": max(0, answered - rows)},
        "ledger_pending_max": max((p for p in sampler.pending if p is not None), default=None),
        "samples": samples,
        "ledger_pending": sampler.pending,
    }


def write_report(result: dict[str, Any], stem: Path) -> Path:
    rss, load, ledger, s = result["rss_mb"], result["load"], result["ledger"], result["settings"]
    lines = [
        f"# Soak: {s['minutes']} minutes of load, ledger on ({result['date']}, "
        f"{result['machine']})",
        "",
        f"`thrifty serve` (1 worker, core 0) in front of the test upstream (core 1); "
        f"{result['generator']} closed loop at c={s['concurrency']}; RSS sampled every "
        f"{s['interval_s']} s.",
        "",
    ]
    if result["note"]:
        lines += [f"> {result['note']}", ""]
    lines += [
        "| RSS (MB) | before load | peak | end | after 1 min: min–max | slope after 1 min |",
        "|---|---|---|---|---|---|",
        f"| gateway | {rss['before_load']} | {rss['peak']} | {rss['end']} | "
        f"{rss['after_warmup_min']}–{rss['after_warmup_max']} | "
        f"{rss['slope_after_warmup_mb_per_min']} MB/min |",
        "",
        f"- Requests: {load['requests']:,} in {load['seconds']} s ({load['rps']:,.0f}/s), "
        f"p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms, errors {load['errors']}.",
        f"- Gateway CPU per request: {result['gateway_cpu_us_per_request']:.0f} µs "
        "(all threads, ledger writer included).",
        f"- Ledger records waiting to be written, largest sample: {result['ledger_pending_max']}.",
        f"- Ledger: {ledger['rows']:,} rows for {ledger['answered_requests']:,} answered "
        f"requests (missing: {ledger['missing']}; up to c more rows are requests in flight "
        "when the load stopped).",
        "",
        "RSS over time (every 30 s):",
        "",
        "| t (s) | RSS (MB) | ledger records waiting |",
        "|---|---|---|",
    ]
    shown, next_t = [], 0.0
    for (t, r), waiting in zip(result["samples"], result["ledger_pending"], strict=True):
        if t >= next_t:
            shown.append(f"| {t:.0f} | {r} | {waiting} |")
            next_t = t + 30
    lines += [*shown, ""]
    return write_results(stem, result, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument("--out", type=Path, help="report stem (default results/<date>-soak)")
    args = parser.parse_args()
    result = run(args)
    report = write_report(result, args.out or result_stem("soak"))
    sys.stdout.write(report.read_text())
    return 0 if result["ledger"]["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
