"""The provider's Files and Batch APIs (OpenAI's shapes) over aiohttp.

Batch calls are rare, so each opens its own session instead of sharing the chat hot
path's pool. Failures become :mod:`thrifty.errors` here: a 4xx from the provider keeps
its status (the caller's file or job is wrong), anything else is a 502.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from thrifty.errors import InvalidRequest, UpstreamError, UpstreamUnavailable
from thrifty.providers.config import ProviderConfig


class ProviderBatchAPI:
    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self._base = config.base_url
        self._headers = dict(config.headers)
        if config.api_key:
            self._headers["authorization"] = f"Bearer {config.api_key}"
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.connect_timeout_s, sock_read=config.timeout_s
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> bytes:
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout, headers=self._headers) as session,
                session.request(method, f"{self._base}/{path}", **kwargs) as resp,
            ):
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable(
                f"upstream {self.name} could not be reached: {type(exc).__name__}"
            ) from None
        if status < 300:
            return raw
        message = f"upstream {self.name} returned HTTP {status}"
        try:
            error = orjson.loads(raw).get("error") or {}
            message = str(error.get("message") or message)
        except (orjson.JSONDecodeError, AttributeError):
            pass
        if 400 <= status < 500 and status not in (401, 403, 429):
            raise InvalidRequest(message, status=status)
        raise UpstreamError(message, status=502)

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        raw = await self._request(method, path, **kwargs)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"upstream {self.name} sent invalid JSON for {path}") from None
        if not isinstance(data, dict):
            raise UpstreamError(f"upstream {self.name} sent an unexpected reply for {path}")
        return data

    async def upload(self, filename: str, content: bytes, purpose: str) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("purpose", purpose)
        form.add_field("file", content, filename=filename, content_type="application/jsonl")
        return await self._json("POST", "files", data=form)

    async def get(self, path: str) -> dict[str, Any]:
        return await self._json("GET", path)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._json(
            "POST",
            path,
            data=orjson.dumps(body or {}),
            headers={"content-type": "application/json"},
        )

    async def content(self, file_id: str) -> bytes:
        return await self._request("GET", f"files/{file_id}/content")
