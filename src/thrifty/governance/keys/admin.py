"""The admin API's handlers (virtual keys, budget use); each needs an ``auth.admin_keys`` key.

::

    POST   /admin/keys            create (body: KeySpec) -> 201, the secret shown once
    GET    /admin/keys            list (no secrets)
    GET    /admin/keys/{id}       one key
    PATCH  /admin/keys/{id}       change the fields given (budgets, models, limits, ...)
    DELETE /admin/keys/{id}       revoke: refused by the next request, in every worker
    GET    /admin/budgets         spend and reservations of every configured budget
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from thrifty.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
)
from thrifty.governance.budgets.base import BucketUsage
from thrifty.governance.keys.base import KeyStore, VirtualKey
from thrifty.governance.keys.identity import Overrides
from thrifty.governance.keys.presented import presented_key
from thrifty.governance.keys.spec import KeySpec
from thrifty.pipeline.requests import loads_body
from thrifty.registry import ModelRegistry
from thrifty.stores.sqlite import off_loop

__all__ = ["KeysAdmin", "check_spec", "parse_spec"]


#: Raises :class:`InvalidRequest` when a key's overrides do not fit the gateway's config.
CheckOverrides = Callable[[Overrides], object]


def parse_spec(raw: bytes) -> KeySpec:
    data = loads_body(raw) if raw else {}
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_body")
    try:
        return KeySpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "body"
        raise InvalidRequest(
            f"{where}: {error['msg']}", param=where, code="invalid_value"
        ) from None


def check_spec(registry: ModelRegistry, spec: KeySpec, check_overrides: CheckOverrides) -> None:
    """Models must be served here (or ``auto``); overrides must build a valid config
    (``check_overrides`` knows the config; the admin API and ``thrifty keys`` pass it)."""
    for name in spec.models or ():
        if name != "auto":
            try:
                registry.get(name)
            except ModelNotFound:
                raise InvalidRequest(
                    f"models: {name!r} is not served by this gateway",
                    param="models",
                    code="model_not_found",
                ) from None
    check_overrides(Overrides(**spec.overrides.model_dump()))


class KeysAdmin:
    """The handlers over the key store and the budget use; the server mounts them.

    Each takes the request and returns JSON-able data; a :class:`ThriftyError` it raises
    is the client's OpenAI-style error.
    """

    def __init__(
        self,
        *,
        is_admin: Callable[[str | None], bool],
        admin_api_on: bool,
        store: KeyStore | None,
        registry: ModelRegistry,
        check_overrides: CheckOverrides,
        budget_usage: Callable[[], Awaitable[Sequence[BucketUsage]]],
    ) -> None:
        self._is_admin = is_admin
        self._admin_api_on = admin_api_on
        self._key_store = store
        self._registry = registry
        self._check_overrides = check_overrides
        self._budget_usage = budget_usage

    def _store(self, request: Request) -> KeyStore:
        if not self._is_admin(presented_key(request)):
            if not self._admin_api_on:
                raise PermissionDenied(
                    "The admin API is off: no auth.admin_keys are configured.",
                    code="admin_disabled",
                )
            raise AuthenticationFailed(
                "The admin API needs an admin key (auth.admin_keys) as 'Authorization: Bearer'."
            )
        if self._key_store is None:
            raise InvalidRequest(
                "Virtual keys are off: set governance.keys_path (or keys_store: postgres) "
                "in the gateway's config.",
                status=404,
                code="keys_disabled",
            )
        return self._key_store

    async def _key(self, store: KeyStore, key_id: str) -> VirtualKey:
        # no such id; PostgreSQL would refuse the NUL with an error
        key = await off_loop("key store", store.get, key_id) if "\x00" not in key_id else None
        if key is None:
            raise InvalidRequest(f"no virtual key {key_id!r}", status=404, code="key_not_found")
        return key

    def _spec(self, raw: bytes) -> KeySpec:
        spec = parse_spec(raw)
        check_spec(self._registry, spec, self._check_overrides)
        return spec

    async def create(self, request: Request) -> dict[str, Any]:
        """``POST /admin/keys`` (the server answers 201): the secret is shown this once."""
        store = self._store(request)
        key, secret = await off_loop("key store", store.create, self._spec(await request.body()))
        return {**key.to_dict(), "key": secret}

    async def list(self, request: Request) -> dict[str, Any]:
        keys = await off_loop("key store", self._store(request).list)
        return {"object": "list", "data": [k.to_dict() for k in keys]}

    async def get(self, request: Request) -> dict[str, Any]:
        return (await self._key(self._store(request), request.path_params["key_id"])).to_dict()

    async def update(self, request: Request) -> dict[str, Any]:
        store = self._store(request)
        key = await self._key(store, request.path_params["key_id"])
        spec = self._spec(await request.body())
        updated = await off_loop("key store", store.update, key.id, spec)
        return (updated or key).to_dict()

    async def revoke(self, request: Request) -> dict[str, Any]:
        store = self._store(request)
        key = await self._key(store, request.path_params["key_id"])
        revoked = await off_loop("key store", store.revoke, key.id)
        return (revoked or key).to_dict()

    async def budgets(self, request: Request) -> dict[str, Any]:
        self._store(request)
        data = [
            {
                "scope": u.bucket.scope,
                "period": u.bucket.period,
                "window": u.bucket.window,
                "limit_usd": u.bucket.limit_usd,
                "spent_usd": u.spent_usd,
                "reserved_usd": u.reserved_usd,
                "resets_at": u.bucket.resets_at,
            }
            for u in await self._budget_usage()
        ]
        return {"object": "list", "data": data}
