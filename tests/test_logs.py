"""Structured logs: JSON lines that carry the request id and never a secret."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import openai
import orjson
import pytest
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config

from thrifty.logs import JSONFormatter, TextFormatter, request_id_var

PROVIDER_KEY = "prov-key-0123456789abcdef"  # not "sk-" shaped: only registration masks it
ADMIN_KEY = "admin-key-never-logged"


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What the real JSON formatter writes for the ``thrifty`` loggers during the test."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("thrifty")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [orjson.loads(line) for line in out.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_gateway_log_lines_carry_the_request_id_and_no_secret(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    config = base_config(upstream.url, auth={"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]})
    config["providers"]["dead"]["api_key"] = PROVIDER_KEY
    config["providers"]["dead"]["headers"] = {"x-org-token": "org-token-secret-42"}
    gateway = start_gateway(config)
    with openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="dead-model", messages=[{"role": "user", "content": "hi"}]
        )
    request_id = raw.headers["x-thrifty-request-id"]
    # a careless line elsewhere: the keys the runtime registered are masked anyway
    logging.getLogger("thrifty.test").warning(
        f"config has {GATEWAY_KEY}, {ADMIN_KEY}, {PROVIDER_KEY} and org-token-secret-42"
    )
    lines = log_lines()
    failed = [line for line in lines if line["msg"] == "upstream attempt failed"]
    assert len(failed) == 3 and all(line["request_id"] == request_id for line in failed)
    assert all(line["provider"] == "dead" and line["level"] == "warning" for line in failed)
    text = "\n".join(orjson.dumps(line).decode() for line in lines)
    for secret in (GATEWAY_KEY, ADMIN_KEY, PROVIDER_KEY, "org-token-secret-42"):
        assert secret not in text
    assert lines[-1]["msg"] == "config has ***, ***, *** and ***"


def test_any_line_logged_while_serving_gets_the_id_and_credentials_are_masked(
    log_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    log = logging.getLogger("thrifty.somewhere")
    token = request_id_var.set("thr-0123456789abcdef01234567")
    try:
        log.warning(
            "upstream said: Authorization: Bearer eyJhbGciOi.secret and api_key=abc123xyz",
            extra={
                "headers": {"Authorization": "Bearer real-token", "x-api-key": "k-123456"},
                "api_key": "sk-proj-abcdefghijklmnop",
                "attempts": [{"error": "invalid key sk-live-1234567890abcdef"}],
            },
        )
    finally:
        request_id_var.reset(token)
    log.info("outside any request")
    first, second = log_lines()
    assert first["request_id"] == "thr-0123456789abcdef01234567"
    assert first["msg"] == "upstream said: Authorization: Bearer *** and api_key=***"
    assert first["headers"] == {"Authorization": "***", "x-api-key": "***"}
    assert first["api_key"] == "***"
    assert first["attempts"] == [{"error": "invalid key sk-live-1***"}]
    assert "request_id" not in second


def test_text_format_is_redacted_too() -> None:
    record = logging.makeLogRecord({
        "msg": "key sk-abcdef1234567890 via Bearer tok-9", "levelno": 30,
        "levelname": "WARNING", "name": "thrifty.x",
    })  # fmt: skip
    line = TextFormatter().format(record)
    assert "sk-abcdef***" in line and "Bearer ***" in line and "1234567890" not in line
