"""``GET /v1/models``, ``GET /v1/models/{id}`` and ``GET /health``: what this gateway
serves, and whether it is up."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from thrifty.errors import ModelNotFound
from thrifty.governance.keys.presented import presented_key
from thrifty.runtime import Runtime


class InfoHandlers:
    """The gateway's own two read-only handlers (JSON-able data; errors are raised)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def models(self, request: Request) -> dict[str, Any]:
        """The models the caller's key may use (every served model with auth off)."""
        caller = await self.runtime.authenticate_async(presented_key(request))
        data = [_model(name) for name in self.runtime.registry.names if caller.allows(name)]
        return {"object": "list", "data": data}

    async def model(self, request: Request) -> dict[str, Any]:
        """One served model the caller's key may use; 404 ``model_not_found`` otherwise
        (a model the key may not use is not revealed)."""
        caller = await self.runtime.authenticate_async(presented_key(request))
        name = request.path_params["model_id"]
        if name not in self.runtime.registry.names or not caller.allows(name):
            raise ModelNotFound(f"The model '{name}' does not exist", param="model")
        return _model(name)

    async def health(self, request: Request) -> dict[str, Any]:
        """Up, and how many ledger rows wait to be written (0 for a ledger without a queue)."""
        pending = getattr(self.runtime.ledger, "pending", 0)
        return {"status": "ok", "ledger_pending": pending}


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "thrifty"}
