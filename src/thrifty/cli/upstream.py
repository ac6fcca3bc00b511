"""``thrifty upstream``: run the deterministic OpenAI-compatible test upstream."""

from __future__ import annotations

import argparse

import uvicorn

from thrifty.errors import ConfigError
from thrifty.upstream import UpstreamOptions, build_upstream_app


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "upstream", help="run a fake OpenAI-compatible provider for tests and benchmarks"
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port (default 9000)")
    parser.add_argument("--dataset", help="JSON Lines (or .gz) of recorded answers")
    parser.add_argument(
        "--fallback-rule",
        action="store_true",
        help="answer with the deterministic rule when the dataset has no answer (else 404)",
    )
    parser.add_argument("--models", help="comma-separated accepted models (default: any)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay every response")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between chunks")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="stall of a timeout fault")
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY'")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="MODEL=SPEC",
        help="always inject a fault for MODEL, e.g. broken-model=500 (repeatable)",
    )
    parser.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> UpstreamOptions:
    """Translate CLI flags to UpstreamOptions; bad values raise ConfigError."""
    faults = {}
    for item in args.fault:
        model, sep, spec = item.partition("=")
        if not sep or not model or not spec:
            raise ConfigError(f"--fault expects MODEL=SPEC, got {item!r}")
        faults[model] = spec
    models = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    try:
        return UpstreamOptions(
            models=models,
            dataset=args.dataset,
            fallback_rule=args.fallback_rule,
            api_key=args.api_key,
            latency_ms=args.latency_ms,
            chunk_delay_ms=args.chunk_delay_ms,
            timeout_s=args.timeout_s,
            model_faults=faults,
        )
    except ValueError as exc:
        raise ConfigError(f"upstream: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    try:
        app = build_upstream_app(options)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"upstream: cannot load dataset: {exc}") from exc
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    return 0
