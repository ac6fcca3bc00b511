"""Cache keys: when two chat requests are the same question.

A wrong hit serves an answer to another question, so the rule is: everything that can change
the output is in the key, and only what provably cannot is left out (:data:`IGNORED_PARAMS`).
Unknown parameters are kept, so a new OpenAI parameter can cost a miss but never a wrong hit.

Normalisations (each one is a no-op for the model):

* ``None`` values are dropped: OpenAI reads JSON ``null`` as "not given" (the SDKs send
  ``null`` for omitted fields, and ``message.model_dump()`` echoes ``refusal: null``).
* message ``content`` that is a single text part, ``[{"type": "text", "text": "x"}]``, is
  the string ``"x"``; a string ``stop`` is ``[stop]``; a float with an integral value is an
  int (``temperature=0`` and ``0.0`` are the same JSON number).
* dict key order is irrelevant (keys are sorted when hashed); list order is kept.

Parameters at their OpenAI default are **not** dropped (``temperature=1`` and no
``temperature`` give different keys): defaults differ between providers and models behind
the same public name, and guessing one wrong would merge two different requests. The cost is
an occasional extra miss. ``max_tokens`` and ``max_completion_tokens`` stay distinct for the
same reason (reasoning models and other providers treat them differently).

The body must be JSON-shaped (dicts, lists, str, numbers, bools, None), as the pipeline holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "IGNORED_PARAMS",
    "KEY_VERSION",
    "exact_key",
    "fingerprint_key",
    "is_deterministic",
    "request_fingerprint",
    "semantic_partition",
]

#: Bump when the fingerprint changes shape, so old entries are never read with new meaning.
KEY_VERSION = 1

#: Request fields that do not change the answer, and are therefore not in any key:
#:
#: * ``stream``, ``stream_options``: the transport of the same answer (one JSON body or SSE
#:   chunks; ``include_usage`` only adds a usage chunk). The cache stage replays either shape.
#: * ``metadata``, ``store``: tags and opt-in storage on OpenAI's side (evals/distillation);
#:   the model never sees them.
#: * ``user``: an end-user id for abuse monitoring, not shown to the model. Tenant isolation
#:   is the ``scope`` argument, never this field.
#: * ``service_tier``: the priority/price lane of the same model, not a different model.
IGNORED_PARAMS = frozenset(
    {"stream", "stream_options", "metadata", "user", "store", "service_tier"}
)

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def request_fingerprint(body: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical form of everything in ``body`` that can change the output.

    Returns ``{"model": ..., "messages": [...], "params": {...}}`` where ``params`` holds every
    other non-``None`` field except :data:`IGNORED_PARAMS`, unknown fields included.

    >>> request_fingerprint({"model": "m", "messages": [{"role": "user", "content": "hi"}],
    ...                      "stop": "END", "stream": True})["params"]
    {'stop': ['END']}
    """
    params = {
        name: _param(name, value)
        for name, value in body.items()
        if name not in ("model", "messages") and name not in IGNORED_PARAMS and value is not None
    }
    return {
        "model": body.get("model"),
        "messages": _messages(body.get("messages")),
        "params": params,
    }


def exact_key(body: Mapping[str, Any], scope: str, model: str | None = None) -> str:
    """The exact-cache key of a request for one tenant: a sha256 hex digest.

    ``scope`` is the tenant (a key id or team); different scopes never share a key.
    ``model`` replaces the body's model: the cache stores an answer under the model that
    gave it and looks one up under the model that would give it (the routed one for an
    ``auto`` request), so an answer never crosses models.
    """
    return fingerprint_key(request_fingerprint(body), scope, model)


def fingerprint_key(fingerprint: Mapping[str, Any], scope: str, model: str | None = None) -> str:
    """:func:`exact_key` of an already computed :func:`request_fingerprint` (the cache
    takes the fingerprint before later stages rewrite the body, and keys it at the end)."""
    request = dict(fingerprint)
    if model is not None:
        request["model"] = model
    return _digest({"v": KEY_VERSION, "scope": scope, "request": request})


def semantic_partition(body: Mapping[str, Any], scope: str, model: str | None = None) -> str:
    """The semantic-cache partition of a request: everything but the question's text.

    Two requests may be semantic neighbours only when their partitions are equal: same scope,
    model and parameters, the same messages before and after the last user message (system
    prompt, earlier turns, tool results), and the same last user message apart from its text
    (its ``name`` and any non-text parts, e.g. images, are in the partition, since the embedder
    only sees text). A request without a user message is partitioned on all its messages.
    ``model`` replaces the body's model, as in :func:`exact_key`.
    """
    fingerprint = request_fingerprint(body)
    messages = fingerprint["messages"]
    context: dict[str, Any] = {"messages": messages}
    index = _last_user_index(messages)
    if index is not None:
        final = dict(messages[index])
        content = final.pop("content", None)
        final["non_text_parts"] = _non_text_parts(content)
        context = {"before": messages[:index], "final": final, "after": messages[index + 1 :]}
    payload = {
        "v": KEY_VERSION,
        "kind": "semantic",
        "scope": scope,
        "model": fingerprint["model"] if model is None else model,
        "params": fingerprint["params"],
        "context": context,
    }
    return _digest(payload)


def is_deterministic(body: Mapping[str, Any]) -> bool:
    """Whether the caller asked for the single most likely answer, so a stored one will do.

    True only when ``temperature == 0`` or ``top_p == 0`` (nucleus sampling that keeps only the
    top token is greedy too). A request without ``temperature`` is sampled at OpenAI's default
    of 1, so it is not deterministic; neither is ``seed`` alone (best effort, still sampled).
    ``n > 1`` does not matter: n greedy answers are the same answer. The cache stage stores
    non-deterministic requests only when the config or the request allows it.
    """
    return _is_zero(body.get("temperature")) or _is_zero(body.get("top_p"))


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=_OPTIONS)).hexdigest()


def _is_zero(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def _param(name: str, value: Any) -> Any:
    if name == "stop" and isinstance(value, str):
        return [value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _messages(messages: Any) -> Any:
    if not isinstance(messages, list):
        return _strip_none(messages)
    return [_message(m) for m in messages]


def _message(message: Any) -> Any:
    message = _strip_none(message)
    if isinstance(message, dict):
        content = message.get("content")
        if _is_single_text_part(content):
            message["content"] = content[0]["text"]
    return message


def _is_single_text_part(content: Any) -> bool:
    if not isinstance(content, list) or len(content) != 1:
        return False
    part = content[0]
    return (
        isinstance(part, dict)
        and part.keys() == {"type", "text"}
        and part["type"] == "text"
        and isinstance(part["text"], str)
    )


def _strip_none(value: Any) -> Any:
    """Drop ``None``-valued keys at every depth (messages carry no JSON schemas)."""
    if isinstance(value, Mapping):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _last_user_index(messages: Any) -> int | None:
    if not isinstance(messages, list):
        return None
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user":
            return index
    return None


def _non_text_parts(content: Any) -> list[Any]:
    if not isinstance(content, list):
        return []
    return [p for p in content if not (isinstance(p, dict) and p.get("type") == "text")]
