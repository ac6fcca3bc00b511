"""Virtual keys shared by replicas through PostgreSQL (``governance.keys_store: postgres``).

Two real gateway replicas, each its own app and key-store connection, share one real
PostgreSQL (tests/shared_servers.py): a key made on one works on the other, and a revoke
through either is refused by the very next request on both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from tests.conftest import GATEWAY_KEY, Gateway, ServerThread, base_config
from tests.governance.test_keys import ADMIN_KEY, admin, ask, create_key, sdk
from tests.shared_servers import PostgresServer
from tests.stores.test_scaleout_gateway import ledger_ids

from thrifty.cli.main import main as thrifty_main
from thrifty.config import parse_config
from thrifty.errors import ConfigError
from thrifty.governance.keys.select import open_key_store
from thrifty.ledger.stores.postgres import PostgresLedgerStore


def pg_keys_config(upstream_url: str, dsn: str) -> dict[str, Any]:
    config = base_config(upstream_url)
    config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
    config["ledger"] = {"store": "postgres", "dsn": dsn, "flush_interval_ms": 20}
    config["governance"] = {"keys_store": "postgres", "store": "memory"}  # keys_dsn: ledger's
    return config


def test_replicas_share_keys_and_revocation_is_immediate_everywhere(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    postgres_dsn: str,
) -> None:
    config = pg_keys_config(upstream.url, postgres_dsn)
    one, two = start_gateway(config), start_gateway(config)
    created = create_key(one, owner="ana", team="search", tags={"env": "prod"})
    status, _, listed = admin(two, "GET", "/admin/keys")
    assert status == 200 and [k["id"] for k in listed["data"]] == [created["id"]]

    with sdk(two, created["key"]) as on_two, sdk(one, created["key"]) as on_one:
        answered = ask(on_two)
        ask(on_one)  # both replicas have now seen the key as active
        status, _, revoked = admin(two, "DELETE", f"/admin/keys/{created['id']}")
        assert status == 200 and revoked["active"] is False
        for client in (on_one, on_two):
            with pytest.raises(openai.AuthenticationError) as refused:
                ask(client)
            assert refused.value.code == "key_revoked"

    request_id = answered.headers["x-thrifty-request-id"]
    assert request_id in ledger_ids(postgres_dsn, one, two)
    ledger = PostgresLedgerStore(postgres_dsn)
    try:
        [row] = [r for r in ledger.query_requests() if r["request_id"] == request_id]
    finally:
        ledger.close()
    assert row["key_id"] == created["id"] and row["team"] == "search"
    parsed = parse_config(config)
    store = open_key_store(parsed.governance, parsed.ledger)
    assert store is not None
    try:
        [key] = store.list()
        assert key.id == created["id"] and key.team == "search" and not key.active
    finally:
        store.close()


def test_cli_creates_a_key_every_replica_accepts(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    postgres_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = pg_keys_config(upstream.url, postgres_dsn)
    config_file = tmp_path / "thrifty.yaml"
    config_file.write_text(yaml.safe_dump(config))
    replica = start_gateway(config)
    assert thrifty_main(["keys", "create", "--config", str(config_file), "--owner", "bo",
                         "--json"]) == 0  # fmt: skip
    created = json.loads(capsys.readouterr().out)
    with sdk(replica, created["key"]) as client:
        assert ask(client).http_response.status_code == 200
        assert thrifty_main(["keys", "revoke", created["id"], "--config", str(config_file)]) == 0
        with pytest.raises(openai.AuthenticationError):
            ask(client)


def test_postgres_keys_without_a_dsn_name_the_setting(upstream: ServerThread) -> None:
    config = base_config(upstream.url)
    config["governance"] = {"keys_store": "postgres"}
    with pytest.raises(ConfigError, match=r"governance\.keys_dsn"):
        parsed = parse_config(config)
        open_key_store(parsed.governance, parsed.ledger)


@pytest.mark.slow
def test_key_store_down_fails_closed_with_a_503_and_recovers(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    own_postgres: PostgresServer,
) -> None:
    config = base_config(upstream.url)  # the ledger stays SQLite: only the keys are shared
    config["auth"] = {"keys": [GATEWAY_KEY], "admin_keys": [ADMIN_KEY]}
    config["governance"] = {"keys_store": "postgres", "keys_dsn": own_postgres.dsn(),
                            "store": "memory"}  # fmt: skip
    gateway = start_gateway(config)
    created = create_key(gateway, owner="ana")
    with sdk(gateway, created["key"]) as client, sdk(gateway, GATEWAY_KEY) as config_key:
        assert ask(client).http_response.status_code == 200
        own_postgres.halt()
        with pytest.raises(openai.InternalServerError) as refused:
            ask(client)
        assert refused.value.status_code == 503 and refused.value.code == "store_unavailable"
        assert ask(config_key).http_response.status_code == 200  # config keys need no store
        status, _, body = admin(gateway, "GET", "/admin/keys")
        assert status == 503 and body["error"]["code"] == "store_unavailable"
        own_postgres.resume()
        assert ask(client).http_response.status_code == 200  # reconnected, key still valid


def test_nul_characters_are_a_400_or_404_not_a_500(
    upstream: ServerThread,
    start_gateway: Callable[[dict[str, Any]], Gateway],
    postgres_dsn: str,
) -> None:
    """PostgreSQL text cannot hold NUL: the admin API refuses it (naming the field) and a
    key id with one is simply not found, as with SQLite."""
    gateway = start_gateway(pg_keys_config(upstream.url, postgres_dsn))
    status, _, body = admin(gateway, "POST", "/admin/keys", {"owner": "a\x00b"})
    assert status == 400 and body["error"]["param"] == "owner", body
    created = create_key(gateway, owner="ana")
    status, _, body = admin(gateway, "PATCH", f"/admin/keys/{created['id']}", {"team": "t\x00"})
    assert status == 400 and body["error"]["param"] == "team", body
    for method in ("GET", "PATCH", "DELETE"):
        status, _, body = admin(gateway, method, "/admin/keys/key-%00", {})
        assert status == 404 and body["error"]["code"] == "key_not_found", (method, body)
