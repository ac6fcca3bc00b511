"""The floor of the gateway's stack: a proxy with no Thrifty logic, for comparison.

Same server stack as ``thrifty serve`` (uvicorn, uvloop, httptools, one worker) and the
same upstream client (one pooled ``aiohttp`` session): it reads the body, posts it to
the upstream, parses the JSON answer and sends it back re-encoded, as the gateway does.
No auth, no ledger, no pipeline. The gap between this and the gateway is what Thrifty's
own work costs; the gap between this and the upstream is the stack's. Run as::

    python -m bench.floor_proxy --port 8099 --upstream http://127.0.0.1:9000/v1
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import orjson
import uvicorn


class FloorProxy:
    """A raw ASGI app: ``POST /v1/chat/completions`` to the upstream; ``GET /health``."""

    def __init__(self, upstream: str) -> None:
        self.url = f"{upstream}/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":
            await _reply(send, 200, b'{"status":"ok"}')
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        request = orjson.loads(body)
        async with self.session.post(
            self.url, data=orjson.dumps(request), headers={"content-type": "application/json"}
        ) as resp:
            answer = orjson.loads(await resp.read())
            status = resp.status
        await _reply(send, status, orjson.dumps(answer))


async def _reply(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://host:port/v1")
    args = parser.parse_args()
    uvicorn.run(
        FloorProxy(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
