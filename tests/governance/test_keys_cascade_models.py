"""A key's allowed models cover every model a request may be answered by (issue 16, item
16): a cascade that escalates a named model to a tier the key may not use is refused up
front, not paid for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import Gateway, ServerThread
from tests.governance.test_keys import ask, create_key, keys_config, sdk


@pytest.fixture
def gateway(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> Gateway:
    cascade = {
        "enabled": True,
        "applies_to": ["gpt-4o-mini"],
        "tiers": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}],
    }
    config = keys_config(upstream.url, tmp_path, cascade=cascade, default_model="gpt-4o-mini")
    return start_gateway(config)


def test_a_cascade_tier_the_key_may_not_use_is_refused(gateway: Gateway) -> None:
    narrow = create_key(gateway, owner="ana", models=["gpt-4o-mini"])
    wide = create_key(gateway, owner="bo", models=["gpt-4o-mini", "gpt-4o"])
    with sdk(gateway, narrow["key"]) as client:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            ask(client, model="gpt-4o-mini")
        assert denied.value.code == "model_not_allowed"
        assert "'gpt-4o'" in denied.value.message and "x-thrifty-cascade" in denied.value.message
        # without the cascade the key's own model is served, by that model only
        raw = ask(client, model="gpt-4o-mini", extra_headers={"x-thrifty-cascade": "off"})
        models = {a["model"] for a in gateway.attempts(raw.headers["x-thrifty-request-id"])}
        assert models == {"gpt-4o-mini"}
    with sdk(gateway, wide["key"]) as client:  # a key allowed every tier is served
        raw = ask(client, model="gpt-4o-mini")
    assert raw.http_response.status_code == 200
