"""What both library faces share: building a Context from ``create(**params)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thrifty.config import ThriftyConfig, load_config, parse_config
from thrifty.pipeline.context import CHAT, Context
from thrifty.pipeline.requests import check_chat_body, check_embeddings_body
from thrifty.runtime import Runtime, key_id
from thrifty.server.routes import parse_tags

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
    runtime: Runtime, endpoint: str, params: dict[str, Any], api_key: str | None
) -> Context:
    """Validate ``params`` like the gateway does and wrap them in a Context."""
    params = {k: v for k, v in params.items() if k not in _TRANSPORT_OPTIONS}
    headers = {str(k).lower(): str(v) for k, v in (params.pop("extra_headers", None) or {}).items()}
    body = {**params, **(params.pop("extra_body", None) or {})}
    body.pop("extra_body", None)
    default = runtime.config.default_model
    model = (
        check_chat_body(body, default) if endpoint == CHAT else check_embeddings_body(body, default)
    )
    runtime.registry.get(model)
    body["model"] = model
    return Context(
        endpoint=endpoint,
        body=body,
        requested_model=model,
        model=model,
        stream=bool(body.get("stream")) and endpoint == CHAT,
        key_id=key_id(api_key) if api_key else None,
        tags=parse_tags(headers.get("x-thrifty-tags"), body.get("metadata")),
        controls={
            k[len("x-thrifty-") :]: v for k, v in headers.items() if k.startswith("x-thrifty-")
        },
    )
