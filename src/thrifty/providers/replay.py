"""A provider that answers from recordings, for ``thrifty replay`` and ``thrifty tune``.

Model M's answer to a prompt is M's recorded answer in the dataset (matched on the
messages alone, as the test upstream does), shaped exactly as the test upstream shapes
it, with usage counted the same way (or the recorded output length). A prompt M has no
recording for raises :class:`NoRecordedAnswer`: an explicit outcome in the replay report,
never a silent stand-in answer.

A reply is a function of the request body (and the recordings), so each provider
remembers what it built for a body (a bounded memo keyed by the body's digest) and
builds only the envelope again: ``thrifty tune`` sends the same requests through
~1,200 replays sharing one provider (``replay.simulator.Replayer``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from thrifty.errors import UpstreamError
from thrifty.providers.base import ProviderReply, ProviderStream
from thrifty.recordings.completion import (
    ChatParams,
    Choice,
    build_choice,
    completion_body,
    usage_body,
)
from thrifty.recordings.dataset import RecordedAnswer, ReplayRecord, messages_key
from thrifty.recordings.synthetic import answer_text, embedding_vector
from thrifty.tokens import count_messages, count_text


class NoRecordedAnswer(UpstreamError):
    status = 404
    code = "no_recorded_answer"


#: Replies remembered per provider (the oldest out first): the demo's tune needs ~2,000.
MEMO_SIZE = 8_192

# what a reply is built from: the parsed request, its choices, usage and id
_Built = tuple[ChatParams, list[Choice], dict[str, Any], str]


class ReplayProvider:
    """Serves every model of a dataset in-process; ``name`` is the configured provider."""

    def __init__(self, name: str, records: Iterable[ReplayRecord]) -> None:
        self.name = name
        self.stream_usage = False
        self._answers: dict[str, Mapping[str, RecordedAnswer]] = {
            record.key: record.answers for record in records
        }
        self.calls = 0
        self._built: dict[bytes, _Built] = {}

    def answer(self, messages: list[dict[str, Any]], model: str) -> RecordedAnswer | None:
        return self._answers.get(messages_key(messages), {}).get(model)

    async def send(self, endpoint: str, body: dict[str, Any]) -> ProviderReply:
        self.calls += 1
        if endpoint == "embeddings":
            return ProviderReply(_embeddings(body))
        digest = _digest(body)
        built = self._built.get(digest) if digest is not None else None
        if built is None:
            built, keep = self._build(body)
            if digest is not None and keep:
                if len(self._built) >= MEMO_SIZE:
                    del self._built[next(iter(self._built))]  # the oldest
                self._built[digest] = built
        params, choices, usage, completion_id = built
        fresh = {k: dict(v) if isinstance(v, dict) else v for k, v in usage.items()}
        return ProviderReply(completion_body(completion_id, params, choices, fresh))

    def _build(self, body: dict[str, Any]) -> tuple[_Built, bool]:
        """The reply's parts, and whether to keep them: only when each choice's text is
        the recording's own string (not a length-only record's filler, made anew and
        large: ~3 kB a reply on MMLU) and has no logprobs or tool call (nested objects
        the replies would share)."""
        try:
            params = ChatParams.parse(body)
        except ValueError as exc:
            raise UpstreamError(str(exc), status=400, retryable=False) from None
        key = messages_key(params.messages)
        recorded = self._answers.get(key, {}).get(params.model)
        text = None if recorded is None else answer_text(recorded, params.model, key)
        if recorded is None or text is None:
            raise NoRecordedAnswer(
                f"the dataset has no answer of {params.model!r} for this prompt", retryable=False
            )
        choices = [build_choice(params, text, index) for index in range(params.n)]
        usage = usage_body(count_messages(params.messages, params.model).tokens, 0, choices)
        if recorded.output_tokens is not None and recorded.text is not None:
            usage["completion_tokens"] = recorded.output_tokens * params.n
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        keep = not (params.logprobs or params.tool_name) and all(
            c.content is not None and c.content is recorded.text for c in choices
        )
        # the envelope reads the model alone: the messages are not kept
        built = (replace(params, messages=[]), choices, usage, "chatcmpl-replay-" + key[:16])
        return built, keep

    async def open_stream(self, endpoint: str, body: dict[str, Any]) -> ProviderStream:
        raise UpstreamError("replay answers are not streamed", status=400, retryable=False)

    async def get(self, endpoint: str) -> dict[str, Any]:
        return {"object": "list", "data": []}

    async def close(self) -> None:
        return None


def _digest(body: Mapping[str, Any]) -> bytes | None:
    """The request body's digest (None: not plain JSON, so not remembered)."""
    try:
        raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    return hashlib.blake2b(raw, digest_size=16).digest()


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else [str(t) for t in raw or ()]
    model = str(body.get("model"))
    dimensions = int(body.get("dimensions") or 64)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": embedding_vector(t.encode(), dimensions).tolist(),
        }
        for i, t in enumerate(texts)
    ]
    tokens = sum(count_text(t, model).tokens for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
