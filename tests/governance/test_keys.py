"""Virtual keys through the real gateway: the admin API, the CLI, identity in the ledger,
allowed models, per-key technique overrides, and revocation that takes effect at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config, http, upstream_stats

from thrifty.cli.main import main as thrifty_main
from thrifty.governance.keys.spec import KeySpec
from thrifty.governance.keys.sqlite import SqliteKeyStore
from thrifty.ledger.stores.sqlite import SqliteLedgerStore

ADMIN_KEY = "test-admin-key"
MESSAGES = [{"role": "user", "content": "Name a colour."}]


def keys_config(upstream_url: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config = base_config(upstream_url, **overrides)
    config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
    config["governance"] = {
        "keys_path": str(tmp_path / "keys.db"),
        "store_path": str(tmp_path / "budgets.db"),
        **config.get("governance", {}),
    }
    return config


def admin(
    gateway: Gateway, method: str, path: str, body: Any = None, key: str | None = ADMIN_KEY
) -> tuple[int, dict[str, str], Any]:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return http(method, f"{gateway.url}{path}", body, headers)


def create_key(gateway: Gateway, **spec: Any) -> dict[str, Any]:
    status, _, body = admin(gateway, "POST", "/admin/keys", spec)
    assert status == 201, body
    return body


def sdk(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def ask(client: openai.OpenAI, model: str = "gpt-4o-mini", **params: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, temperature=0, **params
    )


@pytest.fixture
def gateway(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> Gateway:
    return start_gateway(keys_config(upstream.url, tmp_path))


def test_admin_api_requires_an_admin_key(gateway: Gateway) -> None:
    for key in (None, GATEWAY_KEY, "wrong"):
        status, _, body = admin(gateway, "GET", "/admin/keys", key=key)
        assert status == 401 and body["error"]["type"] == "authentication_error", key
        status, _, _ = admin(gateway, "POST", "/admin/keys", {"owner": "x"}, key=key)
        assert status == 401
    status, _, body = admin(gateway, "GET", "/admin/keys")
    assert status == 200 and body == {"object": "list", "data": []}
    with sdk(gateway, ADMIN_KEY) as client, pytest.raises(openai.AuthenticationError):
        ask(client)  # an admin key is not a model key


def test_admin_api_off_without_admin_keys_or_key_store(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    no_admin = start_gateway(base_config(upstream.url))
    status, _, body = admin(no_admin, "GET", "/admin/keys", key="anything")
    assert status == 403 and body["error"]["code"] == "admin_disabled"
    config = base_config(upstream.url)
    config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
    no_store = start_gateway(config)
    status, _, body = admin(no_store, "GET", "/admin/keys")
    assert status == 404 and body["error"]["code"] == "keys_disabled"


def test_admin_api_rejects_bad_specs(gateway: Gateway) -> None:
    status, _, body = admin(gateway, "POST", "/admin/keys", {"owner": "a", "colour": "red"})
    assert status == 400 and body["error"]["param"] == "colour"
    status, _, body = admin(gateway, "POST", "/admin/keys", {"models": ["no-such-model"]})
    assert status == 400 and "no-such-model" in body["error"]["message"]
    status, _, body = admin(gateway, "POST", "/admin/keys", {"overrides": {"cascade": True}})
    assert status == 400 and body["error"]["code"] == "invalid_overrides"
    assert "tiers" in body["error"]["message"]
    status, _, body = admin(gateway, "POST", "/admin/keys", {"budgets": [{"limit_usd": -1}]})
    assert status == 400 and body["error"]["param"] == "budgets.0.limit_usd"
    status, _, body = http(
        "POST",
        f"{gateway.url}/admin/keys",
        raw=b"{nope",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert status == 400 and body["error"]["code"] == "invalid_json"
    status, _, body = admin(gateway, "DELETE", "/admin/keys/key-000000000000")
    assert status == 404 and body["error"]["code"] == "key_not_found"


def test_virtual_key_identity_reaches_the_ledger(gateway: Gateway) -> None:
    created = create_key(
        gateway, owner="ana", team="search", tags=["env=prod", "beta"], models=["gpt-4o-mini"]
    )
    secret = created["key"]
    assert secret.startswith("sk-thr-") and created["id"].startswith("key-")
    _, _, listed = admin(gateway, "GET", "/admin/keys")
    assert [k["id"] for k in listed["data"]] == [created["id"]]
    assert secret not in json.dumps(listed), "the secret is shown only at creation"
    with sdk(gateway, secret) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={"x-thrifty-tags": "feature=search-box,env=dev"},
        )
        assert [m.id for m in client.models.list().data] == ["gpt-4o-mini"]
        with pytest.raises(openai.PermissionDeniedError) as denied:
            ask(client, model="gpt-4o")
    assert denied.value.code == "model_not_allowed" and "gpt-4o-mini" in denied.value.message
    row = gateway.row(raw.headers["x-thrifty-request-id"])
    assert row["key_id"] == created["id"] and row["team"] == "search"
    # the key's tags win over the request's on a clash; the request adds its own
    assert row["tags"] == {"feature": "search-box", "env": "prod", "beta": "true"}
    with sdk(gateway, GATEWAY_KEY) as client:  # config keys keep working, without a team
        plain = ask(client, model="gpt-4o")
    assert gateway.row(plain.headers["x-thrifty-request-id"])["team"] is None
    store = SqliteLedgerStore(gateway.ledger_path)
    by_team = {row["key"]: row["requests"] for row in store.aggregate("team")}
    store.close()
    assert by_team == {"search": 1, "(no team)": 1}


def test_revoked_key_is_refused_by_the_next_request(gateway: Gateway, tmp_path: Path) -> None:
    by_api = create_key(gateway, owner="ana")
    by_file = create_key(gateway, owner="bo")
    with sdk(gateway, by_api["key"]) as first, sdk(gateway, by_file["key"]) as second:
        ask(first)
        ask(second)  # both are now in the gateway's key cache
        status, _, body = admin(gateway, "DELETE", f"/admin/keys/{by_api['id']}")
        assert status == 200 and body["active"] is False
        with pytest.raises(openai.AuthenticationError) as refused:
            ask(first)
        assert refused.value.code == "key_revoked"
        # revoked through another connection to the file (another worker, the CLI):
        other = SqliteKeyStore(tmp_path / "keys.db")
        other.revoke(by_file["id"])
        other.close()
        with pytest.raises(openai.AuthenticationError):
            ask(second)


def test_key_overrides_switch_techniques(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    cache = {"enabled": True, "path": str(tmp_path / "cache.db"), "scope": "global"}
    gateway = start_gateway(keys_config(upstream.url, tmp_path, cache=cache))
    no_cache = create_key(gateway, owner="ana", overrides={"cache": False})
    cached = create_key(gateway, owner="bo")
    with sdk(gateway, cached["key"]) as client:
        assert ask(client).headers["x-thrifty-cache"].split(";")[0] == "miss"
        assert ask(client).headers["x-thrifty-cache"].split(";")[0] == "hit-exact"
    before = upstream_stats(upstream)["requests"]
    with sdk(gateway, no_cache["key"]) as client:
        for _ in range(2):
            assert "x-thrifty-cache" not in ask(client).headers, "no cache stage for this key"
    assert upstream_stats(upstream)["requests"] == before + 2


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = thrifty_main(["keys", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_round_trip_with_a_running_gateway(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = keys_config(upstream.url, tmp_path)
    config_file = tmp_path / "thrifty.yaml"
    config_file.write_text(yaml.safe_dump(config))
    gateway = start_gateway(config)
    cfg = ("--config", str(config_file))
    code, out, _ = _cli(
        "create", *cfg, "--owner", "ana", "--team", "search", "--tag", "env=prod",
        "--model", "gpt-4o-mini", "--budget", "day=5", "--rpm", "100", "--cache", "off", "--json",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0
    created = json.loads(out)
    assert created["team"] == "search" and created["tags"] == {"env": "prod"}
    assert created["budgets"] == [{"period": "day", "limit_usd": 5.0}]
    assert created["overrides"] == {"cache": False} and created["models"] == ["gpt-4o-mini"]
    code, out, _ = _cli("list", *cfg, capsys=capsys)
    assert code == 0 and created["id"] in out and "search" in out
    with sdk(gateway, created["key"]) as client:
        ask(client)
        code, out, _ = _cli("revoke", created["id"], *cfg, capsys=capsys)
        assert code == 0 and created["id"] in out
        with pytest.raises(openai.AuthenticationError):
            ask(client)
    code, out, _ = _cli("list", *cfg, "--json", capsys=capsys)
    assert [k["active"] for k in json.loads(out)] == [False]
    code, out, _ = _cli("list", *cfg, "--active", "--json", capsys=capsys)
    assert json.loads(out) == []
    code, _, err = _cli("create", *cfg, "--model", "nope", capsys=capsys)
    assert code == 2 and "nope" in err
    code, _, err = _cli("revoke", "key-000000000000", *cfg, capsys=capsys)
    assert code == 2 and "no key" in err


def test_key_store_keeps_only_a_hash(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "keys.db")
    key, secret = store.create(KeySpec(owner="ana"))
    store.close()
    raw = (tmp_path / "keys.db").read_bytes()
    assert secret.encode() not in raw and secret[len("sk-thr-") :].encode() not in raw
    assert key.id.encode() in raw


def test_patch_changes_a_key_for_the_next_request(gateway: Gateway) -> None:
    created = create_key(gateway, owner="ana", team="search", models=["gpt-4o-mini"])
    with sdk(gateway, created["key"]) as client:
        with pytest.raises(openai.PermissionDeniedError):
            ask(client, model="gpt-4o")
        status, _, body = admin(
            gateway,
            "PATCH",
            f"/admin/keys/{created['id']}",
            {"models": ["gpt-4o-mini", "gpt-4o"], "budgets": [{"period": "day", "limit_usd": 0}]},
        )
        assert status == 200 and body["models"] == ["gpt-4o-mini", "gpt-4o"]
        assert body["team"] == "search" and body["owner"] == "ana", "fields not given are kept"
        with pytest.raises(openai.RateLimitError) as refused:  # allowed now, but a $0 budget
            ask(client, model="gpt-4o")
        assert refused.value.code == "budget_exceeded"
        status, _, body = admin(
            gateway, "PATCH", f"/admin/keys/{created['id']}", {"budgets": [], "team": "ops"}
        )
        assert status == 200 and body["budgets"] == [] and body["team"] == "ops"
        raw = ask(client, model="gpt-4o")
    assert gateway.row(raw.headers["x-thrifty-request-id"])["team"] == "ops"
    status, _, body = admin(gateway, "PATCH", f"/admin/keys/{created['id']}", {"models": ["x"]})
    assert status == 400 and "x" in body["error"]["message"]


def test_empty_route_header_is_no_route_for_a_key_with_a_model_list(
    upstream: ServerThread, start_gateway: Callable[[dict[str, Any]], Gateway], tmp_path: Path
) -> None:
    """Routing reads an empty ``x-thrifty-route`` as no choice; the model check must too,
    not refuse the key for a model named ''."""
    config = keys_config(
        upstream.url, tmp_path, default_model="gpt-4o-mini", routing={"enabled": True}
    )
    gateway = start_gateway(config)
    key = create_key(gateway, owner="ana", models=["gpt-4o-mini"])
    with sdk(gateway, key["key"]) as client:
        raw = ask(client, extra_headers={"x-thrifty-route": ""})
        assert raw.headers["x-thrifty-model"] == "gpt-4o-mini"
        with pytest.raises(openai.PermissionDeniedError):
            ask(client, extra_headers={"x-thrifty-route": "gpt-4o"})


def test_nul_in_a_tag_is_refused_naming_the_field(gateway: Gateway) -> None:
    """A key's tags reach every ledger row it makes; PostgreSQL cannot store NUL."""
    for tags in ({"env": "a\x00"}, ["e\x00nv=prod"]):
        status, _, body = admin(gateway, "POST", "/admin/keys", {"owner": "ana", "tags": tags})
        assert status == 400 and body["error"]["param"] == "tags", body


def test_cli_refuses_an_infinite_or_nan_budget(
    tmp_path: Path, upstream: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """``float('inf')`` parses, but a budget must be a number of dollars (JSON cannot even
    carry it back to the admin API)."""
    config_file = tmp_path / "thrifty.yaml"
    config_file.write_text(yaml.safe_dump(keys_config(upstream.url, tmp_path)))
    for amount in ("inf", "nan"):
        code, _, err = _cli("create", "--config", str(config_file), "--budget",
                            f"month={amount}", capsys=capsys)  # fmt: skip
        assert code == 2 and "limit_usd" in err, err
    store = SqliteKeyStore(tmp_path / "keys.db")
    assert store.list() == []
    store.close()
