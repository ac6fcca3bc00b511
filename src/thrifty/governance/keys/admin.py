"""The admin API for virtual keys and budget use; every route needs an ``auth.admin_keys`` key.

::

    POST   /admin/keys            create (body: KeySpec) -> 201, the secret shown once
    GET    /admin/keys            list (no secrets)
    GET    /admin/keys/{id}       one key
    PATCH  /admin/keys/{id}       change the fields given (budgets, models, limits, ...)
    DELETE /admin/keys/{id}       revoke: refused by the next request, in every worker
    GET    /admin/budgets         spend and reservations of every configured budget
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thrifty.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    ThriftyError,
)
from thrifty.governance.keys.identity import Overrides
from thrifty.governance.keys.overrides import apply_overrides
from thrifty.governance.keys.spec import KeySpec
from thrifty.governance.keys.sqlite import KeyStore, VirtualKey
from thrifty.registry import ModelRegistry
from thrifty.server.responses import JSONBytesResponse, error_response
from thrifty.server.routes import caller_key as presented_key

if TYPE_CHECKING:
    from thrifty.config.schema import ThriftyConfig

__all__ = ["admin_routes", "check_spec"]


def parse_spec(raw: bytes) -> KeySpec:
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
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


def check_spec(config: ThriftyConfig, registry: ModelRegistry, spec: KeySpec) -> None:
    """Models must be served here (or ``auto``); overrides must build a valid config."""
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
    apply_overrides(config, Overrides(**spec.overrides.model_dump()))


class KeysAdmin:
    """Starlette handlers over a runtime's key store and budget store."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def _store(self, request: Request) -> KeyStore:
        presented = presented_key(request)
        if not self.runtime.is_admin(presented):
            if not self.runtime.config.auth.admin_keys:
                raise PermissionDenied(
                    "The admin API is off: no auth.admin_keys are configured.",
                    code="admin_disabled",
                )
            raise AuthenticationFailed(
                "The admin API needs an admin key (auth.admin_keys) as 'Authorization: Bearer'."
            )
        store: KeyStore | None = self.runtime.admission.auth.store
        if store is None:
            raise InvalidRequest(
                "Virtual keys are off: set governance.keys_path (or keys_store: postgres) "
                "in the gateway's config.",
                status=404,
                code="keys_disabled",
            )
        return store

    def _key(self, store: KeyStore, key_id: str) -> VirtualKey:
        key = store.get(key_id) if "\x00" not in key_id else None  # no such id; PostgreSQL
        if key is None:  # would refuse the NUL with an error
            raise InvalidRequest(f"no virtual key {key_id!r}", status=404, code="key_not_found")
        return key

    async def create(self, request: Request) -> Response:
        try:
            store = self._store(request)
            spec = parse_spec(await request.body())
            check_spec(self.runtime.config, self.runtime.registry, spec)
            key, secret = store.create(spec)
        except ThriftyError as exc:
            return error_response(exc)
        return JSONBytesResponse({**key.to_dict(), "key": secret}, status_code=201)

    async def list(self, request: Request) -> Response:
        try:
            keys = self._store(request).list()
        except ThriftyError as exc:
            return error_response(exc)
        return JSONBytesResponse({"object": "list", "data": [k.to_dict() for k in keys]})

    async def get(self, request: Request) -> Response:
        try:
            key = self._key(self._store(request), request.path_params["key_id"])
        except ThriftyError as exc:
            return error_response(exc)
        return JSONBytesResponse(key.to_dict())

    async def update(self, request: Request) -> Response:
        try:
            store = self._store(request)
            key = self._key(store, request.path_params["key_id"])
            spec = parse_spec(await request.body())
            check_spec(self.runtime.config, self.runtime.registry, spec)
            key = store.update(key.id, spec) or key
        except ThriftyError as exc:
            return error_response(exc)
        return JSONBytesResponse(key.to_dict())

    async def revoke(self, request: Request) -> Response:
        try:
            store = self._store(request)
            key = self._key(store, request.path_params["key_id"])
            key = store.revoke(key.id) or key
        except ThriftyError as exc:
            return error_response(exc)
        return JSONBytesResponse(key.to_dict())

    async def budgets(self, request: Request) -> Response:
        try:
            self._store(request)
        except ThriftyError as exc:
            return error_response(exc)
        usage = await self.runtime.admission.budget_usage()
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
            for u in usage
        ]
        return JSONBytesResponse({"object": "list", "data": data})


def admin_routes(runtime: Any) -> list[Route]:
    admin = KeysAdmin(runtime)
    return [
        Route("/admin/keys", admin.create, methods=["POST"]),
        Route("/admin/keys", admin.list, methods=["GET"]),
        Route("/admin/keys/{key_id}", admin.get, methods=["GET"]),
        Route("/admin/keys/{key_id}", admin.update, methods=["PATCH"]),
        Route("/admin/keys/{key_id}", admin.revoke, methods=["DELETE"]),
        Route("/admin/budgets", admin.budgets, methods=["GET"]),
    ]
