"""App factory for ``uvicorn --factory`` (multi-worker): reads the config path from the
environment the ``thrifty serve`` command set, in each worker process."""

from __future__ import annotations

import gc
import os

from thrifty.config import load_config
from thrifty.logs import configure_logging
from thrifty.server.app import GatewayApp, build_app

CONFIG_ENV = "THRIFTY_CONFIG"


def create_app() -> GatewayApp:
    config = load_config(os.environ[CONFIG_ENV])
    configure_logging(config.logging.level, config.logging.format)
    app = build_app(config)
    # Everything built so far (imports, config, registry, pipeline) lives as long as the
    # process: move it out of the collector's sight, so a full collection under load
    # walks only per-request garbage (measured: a 37 ms pause became 12 ms).
    gc.collect()
    gc.freeze()
    return app
