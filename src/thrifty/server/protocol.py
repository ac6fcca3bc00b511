"""The HTTP/1.1 protocol the gateway runs under: uvicorn's httptools protocol with bounds.

uvicorn bounds header size only for h11 (``h11_max_incomplete_event_size``) and has no
header or body read timeout (its ``timeout_keep_alive`` covers only the idle time between
requests), and httptools buffers a header line whole before handing it over. So a client
could send an endless header, or keep a connection open forever by sending a byte now and
then (slowloris). :class:`GuardedHttpToolsProtocol` adds, per connection:

* ``server.max_header_bytes``: the request line and headers together; past it the client
  gets ``431`` and the connection is closed. Counted as bytes arrive, before httptools
  buffers them, so a connection holds at most the limit plus one read (≤ 256 KiB).
* ``server.header_timeout_s``: from the connection's first byte (or its opening) until
  the headers are complete; then ``408`` and close.
* ``server.body_timeout_s``: the longest wait for the next piece of a request body while
  the app is reading it; then the connection is closed, which the app sees as the client
  leaving. A body the app is not reading yet (flow control paused) does not time out.

The limits reach each connection through the lifespan state (``app_state``): the
gateway's lifespan yields them under :data:`STATE_KEY`, and uvicorn hands that state to
every protocol it creates, in every worker. Run it with
``uvicorn.run(..., http="thrifty.server.protocol:GuardedHttpToolsProtocol")``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["PROTOCOL", "STATE_KEY", "GuardedHttpToolsProtocol", "HttpLimits"]

log = logging.getLogger(__name__)

#: The lifespan-state key the gateway's :class:`HttpLimits` travel under.
STATE_KEY = "thrifty.http_limits"
#: ``uvicorn.run(http=...)`` value (an import string also works across worker processes).
PROTOCOL = "thrifty.server.protocol:GuardedHttpToolsProtocol"


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Per-connection bounds (the ``server:`` section's values; see docs/deploy.md)."""

    max_header_bytes: int = 65_536
    header_timeout_s: float = 30.0
    body_timeout_s: float = 60.0


_STATUS = {408: b"408 Request Timeout", 431: b"431 Request Header Fields Too Large"}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a header size limit and header/body timeouts."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = app_state.get(STATE_KEY)
        self._limits = limits if isinstance(limits, HttpLimits) else HttpLimits()
        self._in_headers = True
        self._header_bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ timers

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_too_slow(self) -> None:
        self._timer = None
        log.info("closing a connection whose request headers did not arrive in time",
                 extra={"client": self.client})  # fmt: skip
        self._refuse(408, "the request headers did not arrive in time")

    def _body_too_slow(self) -> None:
        self._timer = None
        if self.flow is not None and self.flow.read_paused:
            # the app is not reading yet: the client is not the slow one
            self._arm(self._limits.body_timeout_s, self._body_too_slow)
            return
        log.info("closing a connection whose request body stalled",
                 extra={"client": self.client})  # fmt: skip
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        if self.transport.is_closing():
            return
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 " + _STATUS[status] + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            + body
        )  # fmt: skip
        self.transport.close()

    # ------------------------------------------------------------ protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._limits.header_timeout_s, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > self._limits.max_header_bytes:
            limit = self._limits.max_header_bytes
            log.info("refusing request headers past server.max_header_bytes",
                     extra={"client": self.client, "limit": limit})  # fmt: skip
            self._refuse(431, f"the request headers are larger than the gateway's limit of "
                         f"{limit} bytes")  # fmt: skip

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        if self._timer is None:
            self._arm(self._limits.header_timeout_s, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._arm(self._limits.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self._limits.body_timeout_s, self._body_too_slow)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._in_headers = True
        self._header_bytes = 0
