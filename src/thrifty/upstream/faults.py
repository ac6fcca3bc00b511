"""Fault injection for the test upstream: error replies, stalls, resets and cut streams.

Syntax (header ``x-upstream-fault`` or ``UpstreamOptions.model_faults`` values)::

    <kind>[;times=K][;id=ID][;retry_after=S][;after=N][;seconds=S]

``kind`` is one of ``429 500 503 timeout reset cut``; ``listevent`` and ``nullchoice``
replace a stream's event number ``after`` with a malformed one (a JSON list; a chunk
whose ``choices`` is ``[null]``), streams only; ``keyerror`` and ``keyjunk`` echo the
request's bearer key (see :data:`KEY_FAULTS`); ``negusage hugeusage strusage nousage``
replace the usage (see :data:`USAGE_FAULTS`) and ``empty`` answers 200 with no choices
(chat; streamed too); or ``drop swap malform``, which act
only on packed prompts (see :mod:`thrifty.upstream.packed`; ``item=K`` picks the item).
With ``times=K`` only the first K requests carrying the same ``id`` fail (the count lives
in the server), later ones pass.

Resets: uvicorn gives an ASGI app no handle on the socket, but its ``send`` callable is
a bound method of the per-request cycle object, which holds the asyncio transport.
:class:`UpstreamApp` keeps the server's own ``send`` in the scope; :func:`drop_connection`
sets ``SO_LINGER`` to 0 and calls ``transport.abort()``, so the client gets a real TCP
RST (``ConnectionResetError``) and no byte of a response. ``cut`` instead flushes the
part it sent and closes normally (FIN), so the client reliably sees that part first.
Under a server without that attribute both fall back to ending the response early
(headers announce more than is sent; the server then closes the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)

#: Stream faults that replace event number ``after`` with a malformed event.
EVENT_FAULTS: Mapping[str, bytes] = {
    "listevent": b"data: [1, 2]\n\n",
    "nullchoice": b'data: {"id": "chatcmpl-bad", "object": "chat.completion.chunk", '
    b'"choices": [null]}\n\n',
}
#: Faults that echo the request's bearer key (the gateway's provider key) back: in a
#: stream, event ``after`` becomes an error event (``keyerror``) or a malformed event
#: (``keyjunk``) holding the key; ``keyerror`` without a stream is a 500 whose message
#: holds it. Real providers echo a key in "Incorrect API key provided: ..." errors.
KEY_FAULTS = frozenset({"keyerror", "keyjunk"})
#: Faults that replace a chat reply's usage (a stream's usage chunk too) with one no
#: provider should send: negative counts, 1e18 tokens, a string, or none at all.
USAGE_FAULTS: Mapping[str, Callable[[dict[str, Any]], Any]] = {
    "negusage": lambda u: {**u, "prompt_tokens": -1_000_000, "total_tokens": -1_000_000},
    "hugeusage": lambda u: {**u, "prompt_tokens": 10**18, "total_tokens": 10**18},
    "strusage": lambda u: "a great many tokens",
    "nousage": lambda u: None,
}
#: A 200 chat completion with no choices (an upstream that answered nothing); streamed,
#: one chunk whose ``choices`` is ``[]``, then ``[DONE]``.
EMPTY_FAULT = "empty"
REPLY_FAULTS = frozenset({*USAGE_FAULTS, EMPTY_FAULT})
FAULT_KINDS = frozenset(
    {"429", "500", "503", "timeout", "reset", "cut", "drop", "swap", "malform", *EVENT_FAULTS,
     *KEY_FAULTS, *REPLY_FAULTS}
)  # fmt: skip
SERVER_SEND_KEY = "thrifty.upstream.server_send"
_ERRORS: Mapping[str, tuple[int, str, str, str | None]] = {
    "429": (429, "Rate limit reached (injected by thrifty upstream).", "rate_limit_error",
            "rate_limit_exceeded"),
    "500": (500, "The server had an error while processing your request (injected).",
            "server_error", None),
    "503": (503, "The server is overloaded or not ready yet (injected).", "server_error",
            "service_unavailable"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One parsed fault; ``key`` names the counter that ``times`` is checked against."""

    kind: str
    key: str
    times: int | None = None
    retry_after: float = 1.0
    after: int = 2
    seconds: float | None = None
    item: int = 2

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse ``"500;times=1;id=a"``; raises ValueError naming the bad part."""
        kind, *parts = (p.strip() for p in text.split(";"))
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        fields: dict[str, str] = {}
        for part in filter(None, parts):
            name, sep, value = part.partition("=")
            if not sep or name not in ("times", "id", "retry_after", "after", "seconds", "item"):
                raise ValueError(f"bad fault parameter {part!r} in {text!r}")
            fields[name] = value
        try:
            return cls(
                kind=kind,
                key=fields.get("id", text),
                times=int(fields["times"]) if "times" in fields else None,
                retry_after=float(fields.get("retry_after", 1.0)),
                after=int(fields.get("after", 2)),
                seconds=float(fields["seconds"]) if "seconds" in fields else None,
                item=int(fields.get("item", 2)),
            )
        except ValueError as exc:
            raise ValueError(f"bad number in fault {text!r}: {exc}") from exc


class FaultBook:
    """Counts how often each ``times``-limited fault fired, so it heals after K hits."""

    def __init__(self) -> None:
        self._fired: dict[str, int] = {}

    def fires(self, spec: FaultSpec) -> bool:
        if spec.times is None:
            return True
        fired = self._fired.get(spec.key, 0)
        if fired >= spec.times:
            return False
        self._fired[spec.key] = fired + 1
        return True

    def clear(self) -> None:
        self._fired.clear()


def error_response(
    status: int,
    message: str,
    type_: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An OpenAI-style ``{"error": {message, type, param, code}}`` reply."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def key_fault_event(kind: str, key: str) -> bytes:
    """The stream event of a :data:`KEY_FAULTS` fault, echoing ``key``."""
    if kind == "keyjunk":
        return b"data: " + orjson.dumps(["Incorrect API key provided: " + key]) + b"\n\n"
    return b"data: " + orjson.dumps({"error": key_fault_error(key)}) + b"\n\n"


def key_fault_error(key: str) -> dict[str, str | None]:
    return {"message": f"Incorrect API key provided: {key}. Check your key (injected).",
            "type": "server_error", "param": None, "code": None}  # fmt: skip


def fault_error_response(spec: FaultSpec) -> Response:
    """The 429 / 500 / 503 reply of an error fault."""
    status, message, type_, code = _ERRORS[spec.kind]
    headers = {"retry-after": f"{spec.retry_after:g}"} if spec.kind == "429" else None
    return error_response(status, message, type_, code=code, headers=headers)


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone; call only after the request body was read."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def sleep_unless_disconnected(receive: Receive, seconds: float) -> bool:
    """Sleep, but stop early if the client hangs up (so stalls never outlive clients).

    Returns True when the client disconnected.
    """
    if seconds <= 0:
        return False
    try:
        await asyncio.wait_for(wait_for_disconnect(receive), seconds)
    except TimeoutError:
        return False
    return True


def _server_transport(scope: Scope) -> asyncio.Transport | None:
    server_send = scope.get(SERVER_SEND_KEY)
    transport = getattr(getattr(server_send, "__self__", None), "transport", None)
    # Duck-typed: uvloop's transports do not subclass asyncio's.
    return transport if callable(getattr(transport, "abort", None)) else None


async def drop_connection(scope: Scope, receive: Receive, *, reset: bool) -> bool:
    """Close the client's TCP connection now; False if the server hides its transport.

    ``reset=True`` sends an RST (``SO_LINGER`` 0 + ``abort()``: unsent data is dropped);
    ``reset=False`` flushes what was sent, then closes (FIN): the client gets a cut body.
    """
    transport = _server_transport(scope)
    if transport is None:
        return False
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    # Wait until the server has seen the loss, so it neither answers 500 nor logs errors.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wait_for_disconnect(receive), 1.0)
    return True


async def _send_partial(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                        chunk: bytes) -> None:  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


class ResetResponse(Response):
    """No response at all: the TCP connection is reset.

    Fallback when the server hides its transport: announce a body and send none of it,
    so the client still fails with an incomplete response, never a clean 500.
    """

    def __init__(self) -> None:
        super().__init__(b"{}", 200, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await drop_connection(scope, receive, reset=True):
            await _send_partial(send, self.status_code, self.raw_headers, b"")


class TruncatedResponse(Response):
    """Announce the full body (Content-Length), send its first ``sent`` bytes, hang up."""

    def __init__(self, body: bytes, sent: int) -> None:
        super().__init__(body, 200, media_type="application/json")
        self.sent = sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send_partial(send, self.status_code, self.raw_headers, self.body[: self.sent])
        if not await drop_connection(scope, receive, reset=False):
            logger.debug("no transport to close; the server ends the incomplete response")


class EventStreamResponse(Response):
    """Server-sent events from a prepared list, with optional per-chunk delay and cut.

    ``cut_after`` = N sends N events, then drops the connection (no finish, no [DONE]).
    """

    media_type = "text/event-stream"

    def __init__(
        self, events: list[bytes], chunk_delay_s: float = 0.0, cut_after: int | None = None
    ) -> None:
        self.status_code = 200
        self.background = None
        self.events = events
        self.chunk_delay_s = chunk_delay_s
        self.cut_after = cut_after
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for number, event in enumerate(self.events):
            if number == self.cut_after:
                await drop_connection(scope, receive, reset=False)
                return  # without a transport the server closes the unfinished response
            if number and await sleep_unless_disconnected(receive, self.chunk_delay_s):
                return  # the client left: a paused stream must not outlive it
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class UpstreamApp(Starlette):
    """Starlette that keeps the server's own ``send`` in the scope, for resets."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SERVER_SEND_KEY] = send
        await super().__call__(scope, receive, send)


def parse_model_faults(model_faults: Mapping[str, str]) -> dict[str, FaultSpec]:
    """Parse option-level faults up front, so a typo fails at start, not mid-test."""
    parsed = {}
    for model, text in model_faults.items():
        spec = FaultSpec.parse(text)
        if spec.key == text:  # no id: count per model, not per spec text
            spec = dataclasses.replace(spec, key=f"model:{model}:{text}")
        parsed[model] = spec
    return parsed
