"""``Thrifty``: the synchronous face, driving the async pipeline on a private loop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Iterator, Mapping
from functools import cached_property
from typing import Any, TypeVar

from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from thrifty.client.async_client import AsyncChunkStream, AsyncThrifty
from thrifty.client.call_info import CallInfo
from thrifty.config import ThriftyConfig

T = TypeVar("T")


class _LoopThread:
    """One event loop in a daemon thread; the pipeline's connections live on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="thrifty-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class ChunkStream:
    """Iterator of ``ChatCompletionChunk``, like ``openai.Stream``."""

    def __init__(self, inner: AsyncChunkStream, loop: _LoopThread) -> None:
        self._inner = inner
        self._loop = loop
        self._iterator = aiter(inner)

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        while True:
            try:
                yield self._loop.run(anext(self._iterator))
            except StopAsyncIteration:
                return

    @property
    def thrifty(self) -> CallInfo | None:
        """The call's :class:`CallInfo` once the stream has ended (None before)."""
        return self._inner.thrifty

    def close(self) -> None:
        self._loop.run(self._inner.close())

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Completions:
    def __init__(self, client: Thrifty) -> None:
        self._client = client

    def create(self, **params: Any) -> ChatCompletion | ChunkStream:
        result = self._client._loop.run(self._client._async.chat.completions.create(**params))
        if isinstance(result, AsyncChunkStream):
            return ChunkStream(result, self._client._loop)
        return result


class Chat:
    def __init__(self, client: Thrifty) -> None:
        self.completions = Completions(client)


class Embeddings:
    def __init__(self, client: Thrifty) -> None:
        self._client = client

    def create(self, **params: Any) -> CreateEmbeddingResponse:
        return self._client._loop.run(self._client._async.embeddings.create(**params))


class Thrifty:
    """The Thrifty pipeline in-process, called like ``openai.OpenAI``.

    >>> client = Thrifty(config="thrifty.yaml")
    >>> reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    >>> client.close()  # flushes the ledger (also done at interpreter exit)
    """

    def __init__(
        self,
        config: str | Mapping[str, Any] | ThriftyConfig,
        *,
        api_key: str | None = None,
        ledger_path: str | None = None,
    ) -> None:
        self._loop = _LoopThread()
        self._async = AsyncThrifty(config, api_key=api_key, ledger_path=ledger_path)

    @cached_property
    def chat(self) -> Chat:
        return Chat(self)

    @cached_property
    def embeddings(self) -> Embeddings:
        return Embeddings(self)

    @property
    def runtime(self) -> Any:
        return self._async.runtime

    def batch(self, questions: list[str], *, model: str, **params: Any) -> list[Any]:
        """Answer independent questions with as few calls as fit (``docs/batching.md``)."""
        return self._loop.run(self._async.batch(questions, model=model, **params))

    def close(self) -> None:
        if self._loop.loop.is_closed():
            return
        self._loop.run(self._async.close())
        self._loop.stop()

    def __enter__(self) -> Thrifty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
