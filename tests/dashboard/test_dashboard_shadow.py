"""The dashboard's shadow-evaluation panel: the collected figures, and no panel when the
gateway does not shadow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread
from tests.dashboard.test_dashboard import ADMIN_KEY, cookie_of, login, request
from tests.shadow.shadow_arena import BASELINE, CHEAP, arena_config, settle

from thrifty.recordings.dataset import bundled_dataset, load_dataset
from thrifty.upstream.app import UpstreamOptions, build_upstream_app


def page(gateway: Gateway) -> str:
    _, headers, _ = login(gateway, ADMIN_KEY)
    status, _, body = request(gateway, "GET", "/dashboard", headers={"cookie": cookie_of(headers)})
    assert status == 200
    return body.decode()


def test_the_panel_shows_what_was_shadowed_and_is_absent_without_shadowing(
    start_gateway: Callable[[dict[str, Any]], Gateway],
) -> None:
    records = [r for r in load_dataset(bundled_dataset()) if r.answers.get(BASELINE)][:3]
    with ServerThread(build_upstream_app(UpstreamOptions(dataset=bundled_dataset()))) as up:
        config = arena_config(up.url, candidates=CHEAP[:2])
        config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
        gateway = start_gateway(config)
        client = openai.OpenAI(base_url=gateway.base_url, api_key=GATEWAY_KEY, max_retries=0)
        for record in records:
            client.chat.completions.create(model=BASELINE, messages=list(record.messages))
        settle(gateway)
        html = page(gateway)
        assert "<section id=shadow>" in html and "3 requests shadowed" in html
        assert all(name in html for name in CHEAP[:2])

        config["shadow"] = {"enabled": False}
        assert "<section id=shadow>" not in page(start_gateway(config))
        gateway.server.stop()
