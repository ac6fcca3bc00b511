"""Structured logging: one JSON object per line, with the request id, secrets redacted.

* **Request id.** The gateway sets :data:`request_id_var` when a request arrives, so every
  line logged while serving it (retries, cache warnings, errors) carries ``request_id``
  without each call site passing it; an explicit ``extra={"request_id": ...}`` wins.
* **Secrets.** Three layers, since a key can reach a log in many shapes: the configured
  secrets themselves (gateway keys, admin keys, provider keys and headers, registered by
  the runtime with :func:`register_secrets`) are replaced wherever they appear; anything
  shaped like a key (``sk-…``, ``Bearer …``, ``api-key: …``) is masked; and fields named
  like a credential (``authorization``, ``api_key``, ``cookie``, …) are dropped to ``***``,
  at any depth of the ``extra`` values.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import orjson

_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_SHAPED = re.compile(
    r"(sk-[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-]+"
    r"|(Bearer\s+)[^\s\"',;]+"
    r"|((?:authorization|x-api-key|api[-_]?key|cookie)[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic|token)\s+)?)[^\s\"',;]+",
    re.IGNORECASE,
)
_SECRET_FIELDS = frozenset({
    "authorization", "api_key", "apikey", "api-key", "x-api-key", "password", "secret",
    "token", "access_token", "cookie", "set-cookie", "session", "admin_key",
})  # fmt: skip
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words
MASK = "***"

#: The id of the request being served in this task (set by the gateway's endpoints).
request_id_var: ContextVar[str | None] = ContextVar("thrifty_request_id", default=None)

_known_lock = threading.Lock()
_known: set[str] = set()
_known_pattern: re.Pattern[str] | None = None


def register_secrets(values: Iterable[str | None]) -> None:
    """Mask these exact strings in every log line from now on (process-wide)."""
    global _known_pattern
    with _known_lock:
        _known.update(v for v in values if v and len(v) >= _MIN_SECRET)
        if _known:
            ordered = sorted(_known, key=len, reverse=True)  # longest first: no partial masks
            _known_pattern = re.compile("|".join(map(re.escape, ordered)))


def config_secrets(config: Any) -> list[str]:
    """The secrets a Thrifty config holds: gateway, admin and provider keys, provider headers."""
    out = [*config.auth.keys, *config.auth.admin_keys]
    for provider in config.providers.values():
        out.append(provider.api_key)
        out.extend(provider.headers.values())
    return [v for v in out if v]


def redact(text: str) -> str:
    """Mask the registered secrets and anything shaped like a key or a bearer token."""
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _SHAPED.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + MASK, text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: MASK if str(k).lower() in _SECRET_FIELDS else _clean(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [_clean(v) for v in value]
    return value


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = MASK if key.lower() in _SECRET_FIELDS else _clean(value)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=lambda v: redact(str(v))).decode()


class TextFormatter(logging.Formatter):
    """Plain lines for people (``logging.format: text``), redacted like the JSON ones."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("thrifty")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
