"""An OpenAI-compatible HTTP upstream over a pooled aiohttp session."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from thrifty.errors import (
    StreamInterrupted,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from thrifty.providers.base import ProviderReply
from thrifty.providers.cache_marks import strip_cache_control
from thrifty.providers.config import ProviderConfig

log = logging.getLogger(__name__)

_JSON = "application/json"
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "x-goog-api-key"})


def _secrets_of(config: ProviderConfig) -> tuple[str, ...]:
    """The provider's credentials: its ``api_key`` and the values of configured headers
    that carry a key (Azure's ``api-key``, Anthropic's ``x-api-key``)."""
    found = [config.api_key or ""]
    for name, value in config.headers.items():
        if name.lower() in _SECRET_HEADERS:
            found.append(value.removeprefix("Bearer ").strip())
    return tuple(s for s in found if len(s) >= 6)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` without any of ``secrets`` (nor their first 8 characters, which is how
    some providers quote a key they refuse)."""
    for secret in secrets:
        text = text.replace(secret, "***").replace(secret[:8], "***")
    return text


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            return None  # HTTP-date form: rare for LLM APIs; fall back to backoff
    return None


class OpenAIHTTPProvider:
    """Talks to any server that speaks the OpenAI REST API.

    One ``aiohttp.ClientSession`` per provider, created in the running loop on first
    use, keeps connections warm. The provider key is sent upstream only and is scrubbed
    from any error text before it can reach a client or a log line.
    """

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.config = config
        self.stream_usage = config.stream_usage
        self._base = config.base_url
        self._headers = {"content-type": _JSON, **config.headers}
        if config.api_key:
            self._headers["authorization"] = f"Bearer {config.api_key}"
        self._secrets = _secrets_of(config)
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.connect_timeout_s, sock_read=config.timeout_s
        )

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.config.max_connections, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                auto_decompress=True,
            )
            self._session = session
        return session

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def _error_from_response(self, resp: aiohttp.ClientResponse) -> UpstreamError:
        raw = await resp.read()
        message = f"upstream {self.name} returned HTTP {resp.status}"
        code = None
        etype = None
        try:
            err = orjson.loads(raw).get("error")
            if isinstance(err, dict):
                message = str(err.get("message") or message)
                code = err.get("code")
                etype = err.get("type")
            elif isinstance(err, str):
                message = err
        except (orjson.JSONDecodeError, AttributeError):
            if raw:
                message = f"{message}: {raw[:200].decode(errors='replace')}"
        message = self._scrub(message)
        status = resp.status
        headers: dict[str, str] = {}
        retry_after = _retry_after(resp.headers)
        if retry_after is not None:
            headers["retry-after"] = str(int(retry_after + 0.999))
        if status in (401, 403):
            # The *gateway's* provider credentials were refused; that is not the caller's fault.
            error = UpstreamError(
                f"upstream {self.name} refused the gateway's credentials: {message}",
                status=502,
                code="upstream_auth_failed",
            )
        elif status == 429 or status >= 500:
            error = UpstreamError(
                message,
                status=429 if status == 429 else (503 if status == 503 else 502),
                code=code if isinstance(code, str) else None,
                retryable=True,
                headers=headers,
            )
            if status == 429:
                error.type = "rate_limit_error"
        else:
            error = UpstreamError(
                message, status=status, code=code if isinstance(code, str) else None
            )
            if isinstance(etype, str):
                error.type = etype
        error.retry_after = retry_after
        error.upstream_status = status
        return error

    async def _post(self, endpoint: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
        try:
            resp = await self._client().post(
                f"{self._base}/{endpoint}", data=orjson.dumps(body), headers=self._headers
            )
        except TimeoutError as exc:
            timeout = UpstreamTimeout(f"upstream {self.name} timed out", retryable=True)
            timeout.delivered = not isinstance(exc, aiohttp.ConnectionTimeoutError)
            raise timeout from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(
                f"upstream {self.name} unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        if resp.status >= 400:
            try:
                raise await self._error_from_response(resp)
            finally:
                resp.release()
        return resp

    def _outgoing(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """The body as an OpenAI-compatible server takes it: a chat body without the
        caller's Anthropic ``cache_control`` marks, which these servers reject (they cache
        prefixes by themselves)."""
        return strip_cache_control(body) if endpoint == "chat/completions" else body

    async def send(self, endpoint: str, body: dict[str, Any]) -> ProviderReply:
        resp = await self._post(endpoint, self._outgoing(endpoint, body))
        try:
            async with asyncio.timeout(self.config.timeout_s):
                raw = await resp.read()
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self.name} timed out", retryable=True) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(
                f"upstream {self.name} broke the connection mid-answer", retryable=True
            ) from exc
        finally:
            resp.release()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"upstream {self.name} sent invalid JSON", retryable=True) from exc
        if not isinstance(data, dict):
            raise UpstreamError(
                f"upstream {self.name} sent a non-object JSON reply", retryable=True
            )
        return ProviderReply(body=data, status=resp.status)

    async def open_stream(self, endpoint: str, body: dict[str, Any]) -> SSEStream:
        resp = await self._post(endpoint, self._outgoing(endpoint, body))
        content_type = resp.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            # Some servers ignore stream=true; surface that rather than mis-parse JSON as SSE.
            resp.release()
            raise UpstreamError(
                f"upstream {self.name} did not answer with an event stream", retryable=False
            )
        return SSEStream(self.name, resp, self._secrets)

    async def get(self, endpoint: str) -> dict[str, Any]:
        try:
            async with self._client().get(
                f"{self._base}/{endpoint}", headers=self._headers
            ) as resp:
                if resp.status >= 400:
                    raise await self._error_from_response(resp)
                data = orjson.loads(await resp.read())
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream {self.name} unreachable", retryable=True) from exc
        return data if isinstance(data, dict) else {}

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _chunk_choices(event: Any) -> list[dict[str, Any]] | None:
    """A stream chunk's choices, or None when ``event`` is not shaped as a chunk (an
    object whose ``choices``, when present, is a list of objects)."""
    if not isinstance(event, dict):
        return None
    choices = event.get("choices") or []
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        return None
    return choices


#: What a stream cut mid-answer raises while it is read (see :func:`cut_mid_answer`).
CUT = (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError)


def cut_mid_answer(provider: str, exc: BaseException) -> StreamInterrupted:
    return StreamInterrupted(
        f"upstream {provider} stream was cut mid-answer ({type(exc).__name__})"
    )


class SSEStream:
    """Parses an upstream SSE body into event dicts; detects a cut connection.

    Every error it raises has ``secrets`` (the provider's credentials) scrubbed from its
    text, as the non-stream path does: an error event or a malformed event may quote them.
    """

    def __init__(
        self, provider: str, resp: aiohttp.ClientResponse, secrets: tuple[str, ...] = ()
    ) -> None:
        self._provider = provider
        self._resp = resp
        self._secrets = secrets
        self.finished = False
        self.cache_breakpoints = 0  # only the Anthropic stream places breakpoints
        self.caller_cache_breakpoints = 0  # ... and sends a caller's own on

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        data_lines: list[bytes] = []
        saw_finish = False
        try:
            async for raw_line in self._resp.content:
                line = raw_line.rstrip(b"\r\n")
                if line.startswith(b"data:"):
                    data_lines.append(line[5:].lstrip())
                    continue
                if line or not data_lines:
                    continue  # comments, event:/id: fields, keep-alives
                data = b"\n".join(data_lines)
                data_lines = []
                if data == b"[DONE]":
                    self.finished = True
                    return
                event = orjson.loads(data)
                if isinstance(event, dict) and "error" in event and not event.get("choices"):
                    err = event["error"]
                    message = err.get("message") if isinstance(err, dict) else str(err)
                    message = scrub(str(message), self._secrets)
                    raise UpstreamError(f"upstream {self._provider} stream error: {message}")
                choices = _chunk_choices(event)
                if choices is None:
                    shown = scrub(data[:200].decode(errors="replace"), self._secrets)
                    raise StreamInterrupted(
                        f"upstream {self._provider} sent a malformed stream event: {shown}"
                    )
                if any(c.get("finish_reason") for c in choices):
                    saw_finish = True
                yield event
        except CUT as exc:
            raise cut_mid_answer(self._provider, exc) from exc
        finally:
            self._resp.release()
        if saw_finish:
            self.finished = True  # some servers omit [DONE] after the last chunk
            return
        raise StreamInterrupted(
            f"upstream {self._provider} stream ended before the answer finished"
        )

    async def aclose(self) -> None:
        self._resp.release()
        if not self.finished:
            self._resp.close()
