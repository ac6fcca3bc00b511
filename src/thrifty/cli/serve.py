"""``thrifty serve``: run the gateway."""

from __future__ import annotations

import argparse
import os

import uvicorn

from thrifty.config import load_config
from thrifty.server.factory import BIND_HOST_ENV, CONFIG_ENV, WORKERS_ENV
from thrifty.server.protocol import PROTOCOL


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("serve", help="run the OpenAI-compatible gateway")
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--host", help="bind address (default: server.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: server.port, 8080)")
    parser.add_argument("--workers", type=int, help="worker processes (default: server.workers)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # fail fast, with the bad key named, before forking
    os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    host = args.host or config.server.host
    os.environ[BIND_HOST_ENV] = host
    workers = args.workers or config.server.workers
    os.environ[WORKERS_ENV] = str(workers)  # what stores the workers share depends on it
    if workers > 1 and config.metrics.enabled:
        from thrifty.metrics.recorder import prepare_multiprocess

        prepare_multiprocess()  # each worker counts into it; /metrics sums them all
    uvicorn.run(
        "thrifty.server.factory:create_app",
        factory=True,
        host=host,
        port=args.port if args.port is not None else config.server.port,
        workers=workers,
        loop="uvloop",
        http=PROTOCOL,  # httptools + header size limit and read timeouts
        log_level=config.logging.level,
        access_log=False,
        timeout_graceful_shutdown=int(config.server.graceful_timeout_s),
        lifespan="on",
    )
    return 0
