"""``AsyncThrifty``: ``await client.chat.completions.create(...)`` in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from functools import cached_property
from typing import Any

from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from thrifty.client.call_info import CallInfo, attach, call_info
from thrifty.client.convert import to_chat_completion, to_chunk, to_embeddings, to_openai_exception
from thrifty.client.core import load_runtime, make_context
from thrifty.config import ThriftyConfig
from thrifty.errors import ThriftyError
from thrifty.pipeline.context import CHAT, EMBEDDINGS, Context, Reply
from thrifty.runtime import Runtime


class AsyncChunkStream:
    """Async iterator of ``ChatCompletionChunk``, like ``openai.AsyncStream``; once it has
    ended, ``thrifty`` holds the call's :class:`CallInfo` (None before)."""

    def __init__(
        self,
        chunks: AsyncIterator[dict[str, Any]],
        ctx: Context | None = None,
        reply: Reply | None = None,
    ) -> None:
        self._chunks = chunks
        self._ctx = ctx
        self._reply = reply
        self._ended = False

    @property
    def thrifty(self) -> CallInfo | None:
        if not self._ended or self._ctx is None or self._reply is None:
            return None
        return call_info(self._ctx, self._reply)

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ChatCompletionChunk]:
        try:
            async for chunk in self._chunks:
                yield to_chunk(chunk)
        except ThriftyError as exc:
            raise to_openai_exception(exc, CHAT, in_stream=True) from None
        finally:
            await self.close()

    async def close(self) -> None:
        await self._chunks.aclose()  # type: ignore[attr-defined]
        self._ended = True

    async def __aenter__(self) -> AsyncChunkStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncCompletions:
    def __init__(self, client: AsyncThrifty) -> None:
        self._client = client

    async def create(self, **params: Any) -> ChatCompletion | AsyncChunkStream:
        """As ``openai``'s; the reply's ``thrifty`` attribute is its :class:`CallInfo`."""
        ctx, reply = await self._client._run(CHAT, params)
        if reply.chunks is not None:
            return AsyncChunkStream(reply.chunks, ctx, reply)
        return attach(to_chat_completion(reply.body or {}), call_info(ctx, reply))


class AsyncChat:
    def __init__(self, client: AsyncThrifty) -> None:
        self.completions = AsyncCompletions(client)


class AsyncEmbeddings:
    def __init__(self, client: AsyncThrifty) -> None:
        self._client = client

    async def create(self, **params: Any) -> CreateEmbeddingResponse:
        ctx, reply = await self._client._run(EMBEDDINGS, params)
        return attach(to_embeddings(reply.body or {}), call_info(ctx, reply))


class AsyncThrifty:
    """The Thrifty pipeline in-process, called like ``openai.AsyncOpenAI``.

    >>> client = AsyncThrifty(config="thrifty.yaml")
    >>> reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[...])

    ``api_key`` identifies the caller: a virtual key brings its team, tags, allowed
    models, overrides, budgets and rate limits (a revoked one is refused); any other key
    is recorded by its hash (the gateway, not the library, refuses unknown keys).
    Call ``await client.close()`` (or use ``async with``) to flush the ledger.
    """

    def __init__(
        self,
        config: str | Mapping[str, Any] | ThriftyConfig,
        *,
        api_key: str | None = None,
        ledger_path: str | None = None,
    ) -> None:
        self._runtime: Runtime = load_runtime(config, ledger_path)
        self.api_key = api_key

    @cached_property
    def chat(self) -> AsyncChat:
        return AsyncChat(self)

    @cached_property
    def embeddings(self) -> AsyncEmbeddings:
        return AsyncEmbeddings(self)

    @property
    def runtime(self) -> Runtime:
        return self._runtime

    async def batch(self, questions: list[str], *, model: str, **params: Any) -> list[Any]:
        """Answer independent questions with as few calls as fit (``docs/batching.md``).

        Returns one :class:`thrifty.client.batch.BatchAnswer` per question, in order.
        """
        from thrifty.client.batch import batch_questions

        return await batch_questions(
            self._runtime, questions, model=model, api_key=self.api_key, **params
        )

    async def _run(self, endpoint: str, params: dict[str, Any]) -> tuple[Context, Reply]:
        try:
            runtime = self._runtime
            caller = runtime.authenticate(self.api_key, enforce=False)
            ctx = make_context(runtime, endpoint, params, caller)
            return ctx, await runtime.run(ctx, caller)
        except ThriftyError as exc:
            raise to_openai_exception(exc, endpoint) from None

    async def close(self) -> None:
        await self._runtime.aclose()

    async def __aenter__(self) -> AsyncThrifty:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
