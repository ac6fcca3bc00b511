"""What both library faces share: building a Context from ``create(**params)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thrifty.config import ThriftyConfig, load_config, parse_config
from thrifty.governance.keys.identity import Caller
from thrifty.pipeline.context import Context
from thrifty.runtime import Runtime

# openai's per-call transport options; meaningless in-process except the headers/body.
_TRANSPORT_OPTIONS = ("extra_query", "timeout")


def load_runtime(
    config: str | Mapping[str, Any] | ThriftyConfig, ledger_path: str | None
) -> Runtime:
    if isinstance(config, ThriftyConfig):
        resolved = config
    elif isinstance(config, Mapping):
        resolved = parse_config(dict(config))
    else:
        resolved = load_config(config)
    return Runtime(resolved, ledger_path=ledger_path)


def make_context(
    runtime: Runtime, endpoint: str, params: dict[str, Any], caller: Caller
) -> Context:
    """Turn ``create(**params)`` into the request body the gateway would have received."""
    params = {k: v for k, v in params.items() if k not in _TRANSPORT_OPTIONS}
    extra_headers = params.pop("extra_headers", None) or {}
    extra_body = params.pop("extra_body", None) or {}
    headers = {str(k).lower(): str(v) for k, v in extra_headers.items()}
    body = {**params, **extra_body}
    return runtime.new_context(endpoint, body, headers, caller)
