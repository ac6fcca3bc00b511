"""Side by side with the LiteLLM proxy: the same load, in the same run, against the same
test upstream, direct and through each proxy.

LiteLLM is installed into its own virtual environment, ``bench/.litellm-venv`` (created
once, reused; never a Thrifty dependency; ``THRIFTY_BENCH_LITELLM_VENV`` points elsewhere),
at the pinned version below. Processes: the test upstream (``thrifty upstream``) pinned to
core 1; the proxy under test pinned to core 0, one at a time (Thrifty, then LiteLLM), so
they never compete; the load generator (``wrk``, or the Python client when wrk is
missing, see :mod:`bench.loadgen`) on the core the target does not use. Each proxy's
answer must be a valid ``chat.completion`` before it is measured. Figures per target and
concurrency (``--seconds`` each, after a 1 s warm-up): requests/s and latency p50/p99, the
proxy's CPU time per request, and its RSS after the load; ratios Thrifty vs LiteLLM and
each vs direct. Thrifty runs with its ledger on; LiteLLM with logging off and no
database. Writes ``bench/results/<date>-litellm.{md,json}``. Usage::

    python -m bench.litellm_compare [--seconds 5] [--concurrency 1 32] [--no-litellm]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from bench.loadgen import FALLBACK_NOTE, have_wrk, run_load
from bench.reporting import result_stem, write_results
from bench.servers import THRIFTY, Server, pinned, spawn
from thrifty.cli.processes import free_port

BENCH = Path(__file__).parent
LITELLM_VENV = Path(os.environ.get("THRIFTY_BENCH_LITELLM_VENV") or BENCH / ".litellm-venv")
LITELLM_VERSION = "1.108.7"  # pinned: the version this bench was first measured with
KEY = "sk-bench-key"  # the client's key, accepted by both proxies
MODEL = "gpt-4o-mini"
BODY = orjson.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}]}
)
PROXY_CORE, UPSTREAM_CORE = 0, 1
HEADERS = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
# LiteLLM: no database, no network at start (bundled cost map), quiet logs, no .env lookup.
# Usage telemetry is off unless turned on (LiteLLM docs, proxy/telemetry, from 1.107).
LITELLM_ENV = {
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOG": "ERROR",
}


# ---------------------------------------------------------------- LiteLLM venv


def litellm_python() -> Path:
    return LITELLM_VENV / "bin" / "python"


def installed_litellm_version() -> str | None:
    """The LiteLLM version in the bench venv, or None when it is not installed."""
    if not litellm_python().exists():
        return None
    probe = subprocess.run(
        [
            str(litellm_python()),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def litellm_stack() -> dict[str, str | None]:
    """Versions of the server pieces in the LiteLLM venv (None = not installed)."""
    names = ["uvicorn", "uvloop", "httptools", "fastapi", "pydantic", "httpx", "aiohttp"]
    code = (
        "import importlib.metadata as m, json\n"
        "def v(n):\n"
        "    try:\n"
        "        return m.version(n)\n"
        "    except m.PackageNotFoundError:\n"
        "        return None\n"
        f"print(json.dumps({{n: v(n) for n in {names!r}}}))"
    )
    probe = subprocess.run([str(litellm_python()), "-c", code], capture_output=True, text=True)
    return json.loads(probe.stdout) if probe.returncode == 0 else {}


def ensure_litellm(version: str) -> str:
    """Create ``bench/.litellm-venv`` and install ``litellm[proxy]==version`` unless present."""
    current = installed_litellm_version()
    if current == version:
        return current
    if not litellm_python().exists():
        print(f"creating {LITELLM_VENV} ...", file=sys.stderr)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(LITELLM_VENV)], check=True)
    print(f"installing litellm[proxy]=={version} into {LITELLM_VENV} ...", file=sys.stderr)
    pip = [str(litellm_python()), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, f"litellm[proxy]=={version}"], check=True)
    current = installed_litellm_version()
    if current != version:
        raise RuntimeError(f"litellm {version} expected in {LITELLM_VENV}, found {current}")
    return current


# ---------------------------------------------------------------- load


async def check_completion(url: str) -> dict[str, Any]:
    """One request; raise unless the answer is a valid OpenAI ``chat.completion``."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=BODY, headers=HEADERS) as resp,
    ):
        raw = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{url}: HTTP {resp.status}: {raw[:500]!r}")
    data = orjson.loads(raw)
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") or {}
    usage = data.get("usage") or {}
    problems = [
        "object != chat.completion" if data.get("object") != "chat.completion" else "",
        "no id" if not data.get("id") else "",
        "no assistant message" if message.get("role") != "assistant" else "",
        "content is not text" if not isinstance(message.get("content"), str) else "",
        "no usage.total_tokens" if not isinstance(usage.get("total_tokens"), int) else "",
    ]
    if any(problems):
        raise RuntimeError(f"{url}: not a chat.completion ({'; '.join(filter(None, problems))})")
    return data


def measure(
    url: str, concurrencies: list[int], seconds: float, core: int, server: Server | None = None
) -> dict[str, Any]:
    """The same load against one target: figures keyed by ``c<N>``; with ``server``, also
    its CPU time per request (user + system, all threads and child processes' own)."""
    figures: dict[str, Any] = {}
    auth = f"Bearer {KEY}"
    for c in concurrencies:
        run_load(url, BODY, connections=c, seconds=1, auth=auth, core=core, warmup=0)
        cpu_before = server.cpu_seconds() if server else 0.0
        result = run_load(url, BODY, connections=c, seconds=seconds, auth=auth, core=core, warmup=0)
        figures[f"c{c}"] = {
            "requests": result.requests,
            "errors": result.errors,
            "rps": result.rps,
            "p50_ms": round(result.p50_ms, 3),
            "p99_ms": round(result.p99_ms, 3),
        }
        if server is not None:
            used = server.cpu_seconds() - cpu_before
            figures[f"c{c}"]["cpu_us_per_request"] = round(used / result.requests * 1e6, 1)
    return figures


# ---------------------------------------------------------------- run


def thrifty_config(workdir: Path, port: int, upstream: str) -> Path:
    """Pass-through config: one model, one provider, ledger on, quiet logs."""
    config = {
        "server": {"port": port},
        "auth": {"keys": [KEY]},
        "providers": {"up": {"base_url": upstream}},
        "models": {MODEL: {"provider": "up"}},
        "ledger": {"path": str(workdir / "ledger.db")},
        "logging": {"level": "warning"},
    }
    path = workdir / "thrifty.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def litellm_config(workdir: Path, upstream: str) -> Path:
    """Equivalent LiteLLM config: one model to our upstream, dummy key, logging off, no DB."""
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": upstream,
                    "api_key": "sk-dummy",
                },
            }
        ],
        "litellm_settings": {
            "set_verbose": False,
            "json_logs": False,
            "turn_off_message_logging": True,
        },
        "general_settings": {"master_key": KEY},
    }
    path = workdir / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_target(
    server: Server, url: str, concurrencies: list[int], seconds: float
) -> dict[str, Any]:
    """Validate, measure and stop one proxy under test."""
    try:
        asyncio.run(check_completion(url))
        figures = measure(url, concurrencies, seconds, UPSTREAM_CORE, server)
        figures["rss_mb"] = server.rss_mb()
        return figures
    finally:
        server.stop()


def run(concurrencies: list[int], seconds: float, with_litellm: bool) -> dict[str, Any]:
    """Direct, Thrifty, LiteLLM: one after the other against the same upstream."""
    workdir = Path(tempfile.mkdtemp(prefix="thrifty-litellm-bench-"))
    up_port = free_port()
    upstream_base = f"http://127.0.0.1:{up_port}/v1"
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cpus, Python {platform.python_version()}",
        "pinning": "upstream core 1, proxy core 0" if pinned(0) else "none",
        "generator": "wrk" if have_wrk() else "python",
        "note": None if have_wrk() else FALLBACK_NOTE,
        "load": {"concurrency": concurrencies, "seconds": seconds},
        "targets": {},
    }
    litellm_version: str | None = None
    litellm_error: str | None = None
    if with_litellm:
        try:
            litellm_version = ensure_litellm(LITELLM_VERSION)
            print(f"LiteLLM proxy {litellm_version} in {LITELLM_VENV}", file=sys.stderr)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            litellm_error = f"install failed: {exc}"
    upstream = spawn(
        "upstream",
        [*THRIFTY, "upstream", "--port", str(up_port)],
        UPSTREAM_CORE,
        f"http://127.0.0.1:{up_port}/health",
        workdir,
    )
    targets = result["targets"]
    try:
        print("direct ...", file=sys.stderr)
        direct_url = f"{upstream_base}/chat/completions"
        asyncio.run(check_completion(direct_url))
        targets["direct"] = measure(direct_url, concurrencies, seconds, PROXY_CORE)

        print("thrifty ...", file=sys.stderr)
        port = free_port()
        config = thrifty_config(workdir, port, upstream_base)
        server = spawn(
            "thrifty",
            [*THRIFTY, "serve", "--config", str(config), "--port", str(port), "--workers", "1"],
            PROXY_CORE,
            f"http://127.0.0.1:{port}/health",
            workdir,
        )
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        targets["thrifty"] = run_target(server, url, concurrencies, seconds)

        if litellm_version:
            print("litellm ...", file=sys.stderr)
            port = free_port()
            argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config"]
            argv += [str(litellm_config(workdir, upstream_base)), "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--num_workers", "1"]
            try:
                server = spawn(
                    "litellm",
                    argv,
                    PROXY_CORE,
                    f"http://127.0.0.1:{port}/health/liveliness",
                    workdir,
                    env=LITELLM_ENV,
                    timeout=180,
                )
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                targets["litellm"] = run_target(server, url, concurrencies, seconds)
            except RuntimeError as exc:
                litellm_error = str(exc)
    finally:
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if litellm_error:
        print(f"LITELLM NOT MEASURED: {litellm_error}", file=sys.stderr)
    result["litellm"] = {
        "version": litellm_version,
        "venv": str(LITELLM_VENV),
        "workers": 1,
        "stack": litellm_stack() if litellm_version else {},
        "error": litellm_error,
    }
    result["comparison"] = compare(targets, concurrencies)
    return result


def compare(targets: dict[str, Any], concurrencies: list[int]) -> dict[str, Any]:
    """Added latency and requests/s of each proxy vs direct, and Thrifty vs LiteLLM."""
    direct = targets["direct"]
    out: dict[str, Any] = {}
    for name in ("thrifty", "litellm"):
        if name not in targets:
            continue
        figures: dict[str, Any] = {}
        for c in concurrencies:
            key, mine, base = f"c{c}", targets[name][f"c{c}"], direct[f"c{c}"]
            figures[key] = {
                "added_p50_ms": round(mine["p50_ms"] - base["p50_ms"], 3),
                "added_p99_ms": round(mine["p99_ms"] - base["p99_ms"], 3),
                "rps_vs_direct": round(mine["rps"] / base["rps"], 3),
            }
        out[f"{name}_vs_direct"] = figures
    if "thrifty_vs_direct" in out and "litellm_vs_direct" in out:
        head: dict[str, Any] = {}
        for c in concurrencies:
            key = f"c{c}"
            t, lt = out["thrifty_vs_direct"][key], out["litellm_vs_direct"][key]
            head[key] = {
                "rps_thrifty_over_litellm": round(
                    targets["thrifty"][key]["rps"] / targets["litellm"][key]["rps"], 2
                ),
                "added_p50_thrifty_over_litellm": _ratio(t["added_p50_ms"], lt["added_p50_ms"]),
                "added_p99_thrifty_over_litellm": _ratio(t["added_p99_ms"], lt["added_p99_ms"]),
            }
        out["thrifty_vs_litellm"] = head
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b > 0 else None


# ---------------------------------------------------------------- report


def write_report(result: dict[str, Any]) -> Path:
    """Write ``<date>-litellm.json`` and ``.md``; return the Markdown path."""
    stem = result_stem("litellm")
    targets, comparison = result["targets"], result["comparison"]
    load, lite = result["load"], result["litellm"]
    names = [n for n in ("direct", "thrifty", "litellm") if n in targets]
    lines = [
        f"# Thrifty vs LiteLLM proxy ({result['date']}, {result['machine']})",
        "",
        f"Same run, same test upstream (`thrifty upstream`), one proxy at a time, 1 worker each; "
        f"pinning: {result['pinning']}. Load generator: {result['generator']} on the core the "
        f"target does not use, closed loop, {load['seconds']} s per concurrency after a 1 s "
        f"warm-up. Thrifty: ledger on. LiteLLM {lite['version'] or '(not run)'}: no "
        "database, logging off, offline cost map.",
        "",
        *([f"> {result['note']}", ""] if result.get("note") else []),
        "| target | " + " | ".join(_headers(load["concurrency"])) + " | RSS after |",
        "|---|" + "---|" * (len(_headers(load["concurrency"])) + 1),
    ]
    for name in names:
        cells = []
        for c in load["concurrency"]:
            f = targets[name][f"c{c}"]
            cells += [f"{f['p50_ms']:.3f}", f"{f['p99_ms']:.3f}", f"{f['rps']:,.0f}"]
        rss = targets[name].get("rss_mb")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rss or '—'} MB |")
    for name in ("thrifty", "litellm"):
        if name in targets:
            cpu = ", ".join(
                f"c={c}: {targets[name][f'c{c}']['cpu_us_per_request']:,.0f} µs"
                for c in load["concurrency"]
            )
            lines.append(f"\n{name} CPU time per request (all threads): {cpu}.")
    lines += ["", "| vs direct | " + " | ".join(_added_headers(load["concurrency"])) + " |"]
    lines.append("|---|" + "---|" * len(_added_headers(load["concurrency"])))
    for name in ("thrifty", "litellm"):
        figs = comparison.get(f"{name}_vs_direct")
        if not figs:
            continue
        cells = []
        for c in load["concurrency"]:
            f = figs[f"c{c}"]
            cells += [f"{f['added_p50_ms']:+.3f}", f"{f['added_p99_ms']:+.3f}"]
            cells.append(f"×{f['rps_vs_direct']:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    head = comparison.get("thrifty_vs_litellm")
    if head:
        lines += ["", "| Thrifty vs LiteLLM | RPS ratio | added p50 ratio | added p99 ratio |"]
        lines.append("|---|---|---|---|")
        for c in load["concurrency"]:
            f = head[f"c{c}"]
            p50, p99 = (_pct(f[f"added_{q}_thrifty_over_litellm"]) for q in ("p50", "p99"))
            lines.append(f"| c={c} | ×{f['rps_thrifty_over_litellm']} | {p50} | {p99} |")
        lines += [
            "",
            "RPS ratio = Thrifty / LiteLLM; added-latency ratio = Thrifty's added latency as a "
            "share of LiteLLM's (each vs direct in this run; p99 is noisy on a shared machine).",
        ]
    stack = lite.get("stack") or {}
    if stack:
        parser = "httptools" if stack.get("httptools") else "h11 (httptools not installed)"
        pieces = ", ".join(f"{k} {v}" for k, v in stack.items() if v)
        lines += ["", f"LiteLLM server stack as `litellm[proxy]` installs it: {pieces}; "]
        lines[-1] += f"uvicorn's HTTP parser: {parser}."
    if lite.get("error"):
        lines += ["", f"LiteLLM was not measured: {lite['error']}"]
    lines.append("")
    return write_results(stem, result, lines)


def _pct(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f}%"


def _headers(concurrencies: list[int]) -> list[str]:
    return [f"c={c} {h}" for c in concurrencies for h in ("p50 ms", "p99 ms", "req/s")]


def _added_headers(concurrencies: list[int]) -> list[str]:
    return [f"c={c} {h}" for c in concurrencies for h in ("added p50 ms", "added p99 ms", "RPS")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--no-litellm", action="store_true", help="Thrifty vs direct only")
    args = parser.parse_args()
    result = run(sorted(set(args.concurrency)), args.seconds, not args.no_litellm)
    report = write_report(result)
    sys.stdout.write(report.read_text())
    sys.stdout.write(f"\nwritten: {report} and {report.with_suffix('.json')}\n")
    return 1 if result["litellm"]["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
