"""App factory for ``uvicorn --factory`` (multi-worker): reads the config path from the
environment the ``thrifty serve`` command set, in each worker process."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from thrifty.config import load_config
from thrifty.logs import configure_logging
from thrifty.server.app import build_app

CONFIG_ENV = "THRIFTY_CONFIG"


def create_app() -> Starlette:
    config = load_config(os.environ[CONFIG_ENV])
    configure_logging(config.logging.level, config.logging.format)
    return build_app(config)
