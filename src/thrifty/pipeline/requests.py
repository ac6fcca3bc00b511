"""Checks of a request body, shared by the gateway and the library.

Only what must hold for the pipeline to work is checked here (cheap, no schema
library on the hot path); everything else is forwarded for the provider to judge, so
new OpenAI parameters pass through without a Thrifty release.
"""

from __future__ import annotations

from typing import Any

import orjson

from thrifty.errors import InvalidRequest
from thrifty.pipeline.context import CHAT, Context, new_request_id

AUTO_MODEL = "auto"
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

#: Deepest JSON nesting a body may have. orjson reads 1,024 levels but writes only 254,
#: and a body is written again nested a level or two deeper (the upstream call, the
#: ledger, cache keys), so a deeper body would fail with a 500 somewhere down the path.
MAX_JSON_DEPTH = 128
#: Longest model name; a name is sent back in a header, so it must be a header value.
MAX_MODEL_CHARS = 256


def loads_body(raw: bytes | bytearray) -> Any:
    """A request body's JSON; raises :class:`InvalidRequest` when it is empty, not JSON,
    or nested deeper than :data:`MAX_JSON_DEPTH`."""
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object", code="invalid_body")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    # a body with fewer brackets than the limit cannot be nested deeper (a fast memchr)
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _too_deep(value):
        raise InvalidRequest(
            f"the request body is nested deeper than {MAX_JSON_DEPTH} levels",
            code="json_too_deep",
        )
    return value


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests containers deeper than :data:`MAX_JSON_DEPTH` (no recursion)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_JSON_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def _require_model(body: dict[str, Any], default_model: str | None) -> str:
    model = body.get("model")
    if model is None or model == "":
        if default_model is None:
            raise InvalidRequest(
                "you must provide a model parameter",
                param="model",
                code="missing_required_parameter",
            )
        return default_model
    if not isinstance(model, str):
        raise InvalidRequest("model must be a string", param="model", code="invalid_type")
    if len(model) > MAX_MODEL_CHARS or not (model.isascii() and model.isprintable()):
        raise InvalidRequest(
            f"model must be at most {MAX_MODEL_CHARS} printable ASCII characters",
            param="model",
            code="invalid_value",
        )
    return model


def check_chat_body(body: Any, default_model: str | None) -> str:
    """Validate a chat completion body; return the model it asks for."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_body")
    model = _require_model(body, default_model)
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest(
            "'messages' is a required property", param="messages", code="missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "'messages' must be a non-empty array", param="messages", code="invalid_type"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(
                f"messages[{index}] must be an object",
                param=f"messages[{index}]",
                code="invalid_type",
            )
        role = message.get("role")
        if role not in _ROLES:
            raise InvalidRequest(
                f"messages[{index}].role must be one of {sorted(_ROLES)}, got {role!r}",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
        _check_message_parts(message, index)
    if "stream" in body and not isinstance(body["stream"], bool) and body["stream"] is not None:
        raise InvalidRequest("'stream' must be a boolean", param="stream", code="invalid_type")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest(
            "'stream_options' must be an object", param="stream_options", code="invalid_type"
        )
    for key in ("n", "max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise InvalidRequest(
                f"'{key}' must be a positive integer", param=key, code="invalid_value"
            )
    return model


def _check_message_parts(message: dict[str, Any], index: int) -> None:
    """Text parts hold text and ``tool_calls`` is a list of objects (token counting and
    every upstream read them so)."""
    content = message.get("content")
    if isinstance(content, list):
        for number, part in enumerate(content):
            is_text = isinstance(part, dict) and part.get("type") in (None, "text")
            if is_text and not isinstance(part.get("text"), str):
                raise InvalidRequest(
                    f"messages[{index}].content[{number}].text must be a string",
                    param=f"messages[{index}].content[{number}].text",
                    code="invalid_type",
                )
    calls = message.get("tool_calls")
    if calls is not None and not (
        isinstance(calls, list)
        and all(isinstance(c, dict) and isinstance(c.get("function") or {}, dict) for c in calls)
    ):
        raise InvalidRequest(
            f"messages[{index}].tool_calls must be an array of objects",
            param=f"messages[{index}].tool_calls",
            code="invalid_type",
        )


def check_embeddings_body(body: Any, default_model: str | None) -> str:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_body")
    model = _require_model(body, default_model)
    value = body.get("input")
    if value is None:
        raise InvalidRequest(
            "'input' is a required property", param="input", code="missing_required_parameter"
        )
    if isinstance(value, str) or (isinstance(value, list) and value):
        return model
    raise InvalidRequest(
        "'input' must be a string or a non-empty array", param="input", code="invalid_type"
    )


#: Bounds on a request's tags (``metadata`` and ``x-thrifty-tags`` together): each is
#: stored with the request's ledger row and shown by the dashboard.
MAX_TAGS = 64
MAX_TAG_KEY_CHARS = 64
MAX_TAG_VALUE_CHARS = 512


def parse_tags(header: str | None, metadata: Any) -> dict[str, str]:
    """Tags from ``x-thrifty-tags: team=search,env=prod`` and the body's ``metadata``.

    Raises :class:`InvalidRequest` past :data:`MAX_TAGS` tags, or for a key or value
    longer than :data:`MAX_TAG_KEY_CHARS` / :data:`MAX_TAG_VALUE_CHARS`.
    """
    tags: dict[str, str] = {}
    if isinstance(metadata, dict):
        if len(metadata) > MAX_TAGS:
            raise _tag_error(f"at most {MAX_TAGS} tags", "metadata")
        tags.update(
            {
                str(k).replace("\x00", ""): str(v).replace("\x00", "")  # no store holds NUL
                for k, v in metadata.items()
                if isinstance(v, str | int | float)
            }
        )
        _check_tags(tags, "metadata")
    if header:
        items = header.split(",", MAX_TAGS + 1)
        for item in items[:MAX_TAGS + 1]:
            key, sep, value = item.partition("=")
            if key.strip():
                tags[key.strip()] = value.strip() if sep else "true"
        _check_tags(tags, "x-thrifty-tags")
    return tags


def _check_tags(tags: dict[str, str], param: str) -> None:
    if len(tags) > MAX_TAGS:
        raise _tag_error(f"at most {MAX_TAGS} tags (metadata and x-thrifty-tags together)", param)
    for key, value in tags.items():
        if len(key) > MAX_TAG_KEY_CHARS:
            raise _tag_error(f"tag keys of at most {MAX_TAG_KEY_CHARS} characters", param)
        if len(value) > MAX_TAG_VALUE_CHARS:
            raise _tag_error(f"tag values of at most {MAX_TAG_VALUE_CHARS} characters", param)


def _tag_error(rule: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"a request may carry {rule}", param=param, code="invalid_value")


def build_context(
    endpoint: str,
    body: Any,
    headers: dict[str, str],
    *,
    default_model: str | None,
    baseline_model: str | None,
    key_id: str | None,
    request_id: str | None = None,
) -> Context:
    """Check a request and wrap it in a :class:`Context` (gateway and library alike).

    ``headers`` are lower-cased; ``x-thrifty-tags`` become tags and every other
    ``x-thrifty-*`` header a control. The baseline is the model the caller named; only a
    request that leaves the model to Thrifty (none, or ``auto``) is answered by
    ``default_model`` and measured against ``baseline_model``, so a caller's own choice of
    a cheap model is never counted as Thrifty's saving.
    """
    auto = isinstance(body, dict) and body.get("model") in (None, "", AUTO_MODEL)
    if auto:
        body["model"] = default_model
    if endpoint == CHAT:
        model = check_chat_body(body, default_model)
    else:
        model = check_embeddings_body(body, default_model)
    body["model"] = model
    controls = {
        k[len("x-thrifty-") :]: v
        for k, v in headers.items()
        if k.startswith("x-thrifty-") and k != "x-thrifty-tags"
    }
    return Context(
        endpoint=endpoint,
        body=body,
        requested_model=model,
        model=model,
        baseline_model=(baseline_model or model) if auto else model,
        auto=auto,
        stream=bool(body.get("stream")) and endpoint == CHAT,
        key_id=key_id,
        tags=parse_tags(headers.get("x-thrifty-tags"), body.get("metadata")),
        controls=controls,
        request_id=request_id or new_request_id(),
    )
