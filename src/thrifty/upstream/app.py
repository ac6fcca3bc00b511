"""The test upstream: an OpenAI-compatible Starlette app standing in for LLM providers.

It is the baseline in benchmarks, so the hot path is raw Starlette routes on dicts and
``orjson`` bytes. Every chat request goes through the same steps, in this order:

1. count the request in ``/_stats`` (endpoint, then model once parsed);
2. auth (``api_key``), JSON body, known model (``models``);
3. parse the answer-shaping params (:class:`ChatParams`);
4. find the answer text: dataset row, or 404 ``no_recorded_answer``, or the rule; a
   packed prompt (``packed.py``) gets each of its questions answered that way;
5. latency (header ``x-upstream-latency-ms`` or ``latency_ms``);
6. fault (header ``x-upstream-fault`` or ``model_faults``): error reply, stall, reset, cut;
   on packed prompts also drop, swap or malform an item's answer;
7. shape choices, true usage (incl. simulated prompt caching), JSON or SSE.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thrifty.providers.cache_marks import has_marks
from thrifty.recordings.completion import (
    ChatParams,
    InvalidRequest,
    build_choice,
    completion_body,
    usage_body,
)
from thrifty.recordings.synthetic import embedding_vector, rule_text
from thrifty.tokens import count_messages, count_text
from thrifty.upstream.answers import Dataset, canonical_messages, embedding_payload, stream_events
from thrifty.upstream.batches import UpstreamBatches
from thrifty.upstream.faults import (
    EMPTY_FAULT,
    EVENT_FAULTS,
    KEY_FAULTS,
    REPLY_FAULTS,
    USAGE_FAULTS,
    EventStreamResponse,
    FaultBook,
    FaultSpec,
    ResetResponse,
    TruncatedResponse,
    UpstreamApp,
    error_response,
    fault_error_response,
    key_fault_error,
    key_fault_event,
    parse_model_faults,
    sleep_unless_disconnected,
)
from thrifty.upstream.judge import judge_reply
from thrifty.upstream.messages import MarkedCache, MessagesRoute
from thrifty.upstream.packed import (
    PACK_FAULTS,
    PackedItem,
    item_messages,
    packed_items,
    render_packed,
)

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini", "o3-mini", "deepseek-chat")
CACHE_MIN_TOKENS = 1024  # OpenAI caches prompts (and prefixes) of at least this many tokens
CACHE_BLOCK = 128  # ... and reports hits in steps of this many tokens
MAX_DIMENSIONS = 3072  # text-embedding-3-large's size; a larger vector is refused
_REPLY_PRIMER_TOKENS = 3  # count_messages adds these once per prompt, not per prefix
_JSON = "application/json"


@dataclass(frozen=True, kw_only=True)
class UpstreamOptions:
    """How the test upstream behaves for every request (headers can add per request).

    models: accepted model names; empty accepts any (unknown ones get 404 otherwise).
    dataset: JSON Lines (or .gz) of recorded answers; without it the rule answers.
    fallback_rule: answer with the rule when the dataset has no answer (else 404).
    api_key: when set, require ``Authorization: Bearer <api_key>``.
    latency_ms / chunk_delay_ms: delay before the first byte / between SSE chunks.
    timeout_s: how long a ``timeout`` fault stalls before answering.
    model_faults: model name -> fault spec (``faults.py`` syntax), always applied.
    embedding_dimensions: vector size when a request does not ask for ``dimensions``.
    prefix_cache_size: how many prompt-prefix hashes the prompt-cache simulation keeps.
    batch_polls: batch jobs report in_progress this many retrieves, then completed.
    """

    models: Sequence[str] = ()
    dataset: str | Path | None = None
    fallback_rule: bool = False
    api_key: str | None = None
    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    timeout_s: float = 30.0
    model_faults: Mapping[str, str] = field(default_factory=dict)
    embedding_dimensions: int = 64
    prefix_cache_size: int = 10_000
    batch_polls: int = 1
    """Batch jobs report ``in_progress`` for this many retrieves before ``completed``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "model_faults", MappingProxyType(dict(self.model_faults)))
        for name in ("latency_ms", "chunk_delay_ms", "timeout_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.embedding_dimensions < 1 or self.prefix_cache_size < 1:
            raise ValueError("embedding_dimensions and prefix_cache_size must be >= 1")
        parse_model_faults(self.model_faults)  # fail at start on a bad spec

    @classmethod
    def for_tests(cls, **changes: Any) -> UpstreamOptions:
        """Options for tests: timeouts short enough to keep a test suite fast."""
        return cls(**{"timeout_s": 0.5, **changes})


class PrefixCache:
    """Simulated provider prompt caching: an LRU of hashes of seen message prefixes.

    A prompt of >= 1024 tokens whose leading messages were seen before (same model)
    reports ``cached_tokens`` = the token length of the longest seen prefix, rounded down
    to a multiple of 128, and 0 below 1024, as OpenAI does.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def clear(self) -> None:
        self._seen.clear()

    def cached_tokens(self, model: str, messages: list[dict[str, Any]], prompt_tokens: int) -> int:
        if prompt_tokens < CACHE_MIN_TOKENS:
            return 0
        hashes = self._prefix_hashes(model, messages)
        longest = next((k for k in range(len(hashes), 0, -1) if hashes[k - 1] in self._seen), 0)
        for digest in hashes:
            self._seen[digest] = None
            self._seen.move_to_end(digest)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
        if not longest:
            return 0
        prefix = count_messages(messages[:longest], model).tokens - _REPLY_PRIMER_TOKENS
        prefix = min(prefix, prompt_tokens)
        return prefix // CACHE_BLOCK * CACHE_BLOCK if prefix >= CACHE_MIN_TOKENS else 0

    @staticmethod
    def _prefix_hashes(model: str, messages: list[dict[str, Any]]) -> list[bytes]:
        running = hashlib.sha256(model.encode())
        hashes = []
        for message in messages:
            running.update(canonical_messages([message]))
            hashes.append(running.copy().digest())
        return hashes


class UpstreamStats:
    """Request and fault counts, so tests can assert how often the upstream was hit."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.by_endpoint: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.by_endpoint_model: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.faults: Counter[str] = Counter()

    def count_model(self, endpoint: str, model: str) -> None:
        self.by_model[model] += 1
        self.by_endpoint_model[endpoint][model] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": sum(self.by_endpoint.values()),
            "by_endpoint": dict(self.by_endpoint),
            "by_model": dict(self.by_model),
            "by_endpoint_model": {k: dict(v) for k, v in self.by_endpoint_model.items()},
            "faults": dict(self.faults),
        }


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type=_JSON)


def _bad_request(message: str, param: str | None = None) -> Response:
    return error_response(400, message, "invalid_request_error", param=param)


def _header_ms(request: Request, name: str, default_ms: float) -> float:
    """A delay header in seconds; raises InvalidRequest when it is not a number."""
    raw = request.headers.get(name)
    if raw is None:
        return default_ms / 1000
    try:
        return max(float(raw), 0.0) / 1000
    except ValueError:
        raise InvalidRequest(f"{name} must be a number of milliseconds", name) from None


def _embedding_inputs(raw: Any, model: str) -> list[tuple[bytes, int]]:
    """(bytes to hash, token count) per input: strings, a token array or token arrays."""
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'input' must be a string or a non-empty list", "input")
    out = []
    for item in raw:
        if isinstance(item, str):
            out.append((item.encode(), count_text(item, model).tokens))
        elif isinstance(item, list) and all(isinstance(t, int) for t in item):
            out.append((orjson.dumps(item), len(item)))
        else:
            raise InvalidRequest("each input must be a string or a list of token ids", "input")
    return out


class Upstream:
    """The route handlers and the state they share (stats, fault counters, caches)."""

    def __init__(self, options: UpstreamOptions) -> None:
        self.options = options
        self.dataset = Dataset.load(options.dataset) if options.dataset else None
        self.model_faults = parse_model_faults(options.model_faults)
        self.fault_book = FaultBook()
        self.stats = UpstreamStats()
        self.prefixes = PrefixCache(options.prefix_cache_size)
        self.marked = MarkedCache(options.prefix_cache_size)  # /v1/messages (Anthropic)

    def model_names(self) -> tuple[str, ...]:
        if self.options.models:
            return tuple(self.options.models)
        if self.dataset is not None and self.dataset.models:
            return self.dataset.models
        return DEFAULT_MODELS

    # ------------------------------------------------------------------ steps

    def _check_auth(self, request: Request) -> Response | None:
        key = self.options.api_key
        if key is None:
            return None
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            return None
        return error_response(401, "Incorrect API key provided.", "invalid_request_error",
                              code="invalid_api_key")  # fmt: skip

    async def _admit(self, request: Request, endpoint: str) -> tuple[dict[str, Any], str]:
        """Count, authenticate and parse a request; raises _Reject with the reply."""
        self.stats.by_endpoint[endpoint] += 1
        if (denied := self._check_auth(request)) is not None:
            raise _Reject(denied)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise _Reject(
                _bad_request("We could not parse the JSON body of your request.")
            ) from None
        if not isinstance(body, dict):
            raise _Reject(_bad_request("The request body must be a JSON object."))
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _Reject(_bad_request("you must provide a model parameter", "model"))
        self.stats.count_model(endpoint, model)
        if self.options.models and model not in self.options.models:
            raise _Reject(error_response(
                404, f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error", param="model", code="model_not_found",
            ))  # fmt: skip
        return body, model

    def _fault_for(self, request: Request, model: str, packed: bool) -> FaultSpec | None:
        """The fault to inject now, if any; counts it in the stats.

        Packed-answer faults fire (and use up ``times``) only on packed prompts."""
        header = request.headers.get("x-upstream-fault")
        try:
            spec = FaultSpec.parse(header) if header else self.model_faults.get(model)
        except ValueError as exc:
            raise InvalidRequest(str(exc), "x-upstream-fault") from None
        if spec is None or (spec.kind in PACK_FAULTS and not packed):
            return None
        if not self.fault_book.fires(spec):
            return None
        self.stats.faults[spec.kind] += 1
        return spec

    async def _disturb(
        self, request: Request, model: str, packed: bool = False
    ) -> tuple[FaultSpec | None, Response | None]:
        """Latency then fault: returns a ``cut`` or packed-answer spec to apply, or a reply
        replacing the answer."""
        latency = _header_ms(request, "x-upstream-latency-ms", self.options.latency_ms)
        if await sleep_unless_disconnected(request.receive, latency):
            return None, Response(status_code=499)  # client gone; nobody reads this
        spec = self._fault_for(request, model, packed)
        if spec is None or spec.kind == "cut" or spec.kind in PACK_FAULTS:
            return spec, None
        if spec.kind in EVENT_FAULTS or spec.kind in KEY_FAULTS or spec.kind in REPLY_FAULTS:
            return spec, None
        if spec.kind == "timeout":
            seconds = spec.seconds if spec.seconds is not None else self.options.timeout_s
            await sleep_unless_disconnected(request.receive, seconds)
            return None, None
        if spec.kind == "reset":
            return None, ResetResponse()
        return None, fault_error_response(spec)

    def _packed_answers(self, params: ChatParams, items: list[PackedItem]) -> list[str | None]:
        """Each packed question's answer as if asked alone; None when not recorded."""
        answers: list[str | None] = []
        for item in items:
            messages = item_messages(params.messages, item)
            text = self.dataset.lookup(messages, params.model) if self.dataset else None
            if text is None and (self.dataset is None or self.options.fallback_rule):
                text = rule_text(params.model, messages)
            answers.append(text)
        return answers

    def _answer_texts(self, params: ChatParams) -> list[str]:
        """One text per choice: recorded, or by rule; raises _Reject for 404s."""
        if self.dataset is not None:
            text = judge_reply(self.dataset, params.messages) or self.dataset.lookup(
                params.messages, params.model
            )
            if text is not None:
                return [text] * params.n
            if not self.options.fallback_rule:
                known = self.dataset.knows_prompt(params.messages)
                why = f"has no answer from {params.model}" if known else "is not in the dataset"
                raise _Reject(error_response(
                    404, f"No recorded answer: this prompt {why}.", "invalid_request_error",
                    param="messages", code="no_recorded_answer",
                ))  # fmt: skip
        return [rule_text(params.model, params.messages, i) for i in range(params.n)]

    # ------------------------------------------------------------------ routes

    async def chat_completions(self, request: Request) -> Response:
        try:
            body, _ = await self._admit(request, "chat.completions")
            if has_marks(body):  # as OpenAI: an unknown field, so a leaked mark shows
                raise InvalidRequest("Unrecognized request argument supplied: cache_control",
                                     "cache_control")  # fmt: skip
            params = ChatParams.parse(body)
            items = packed_items(params.messages)
            answers = self._packed_answers(params, items) if items else None
            texts = self._answer_texts(params) if items is None else []
            delay = _header_ms(request, "x-upstream-chunk-delay-ms", self.options.chunk_delay_ms)
            cut, reply = await self._disturb(request, params.model, items is not None)
        except _Reject as reject:
            return reject.reply
        except InvalidRequest as exc:
            return _bad_request(str(exc), exc.param)
        if reply is not None:
            return reply
        if items is not None and answers is not None:
            fault = cut.kind if cut is not None and cut.kind in PACK_FAULTS else None
            packed = render_packed(items, answers, fault, cut.item if cut else 2)
            texts = [packed] * params.n
            cut = None if fault else cut
        choices = [build_choice(params, text, i) for i, text in enumerate(texts)]
        prompt_tokens = count_messages(params.messages, params.model).tokens
        cached = self.prefixes.cached_tokens(params.model, params.messages, prompt_tokens)
        usage = usage_body(prompt_tokens, cached, choices)
        completion_id = "chatcmpl-" + secrets.token_hex(12)
        if cut is not None and cut.kind in USAGE_FAULTS:
            usage, cut = USAGE_FAULTS[cut.kind](usage), None
        elif cut is not None and cut.kind == EMPTY_FAULT:
            if not params.stream:
                body = completion_body(completion_id, params, choices, usage)
                return Response(orjson.dumps({**body, "choices": []}), media_type=_JSON)
            chunk = {"id": completion_id, "object": "chat.completion.chunk", "choices": []}
            events = [b"data: " + orjson.dumps(chunk) + b"\n\n", b"data: [DONE]\n\n"]
            return EventStreamResponse(events)
        if params.stream:
            events = stream_events(completion_id, params, choices, usage)
            if cut is not None and cut.kind in EVENT_FAULTS:
                events[min(cut.after, len(events) - 2)] = EVENT_FAULTS[cut.kind]
                cut = None
            elif cut is not None and cut.kind in KEY_FAULTS:
                key = request.headers.get("authorization", "").removeprefix("Bearer ")
                events[min(cut.after, len(events) - 2)] = key_fault_event(cut.kind, key)
                cut = None
            return EventStreamResponse(events, delay, cut.after if cut else None)
        if cut is not None and cut.kind == "keyerror":
            key = request.headers.get("authorization", "").removeprefix("Bearer ")
            return _json({"error": key_fault_error(key)}, 500)
        if cut is not None and (cut.kind in EVENT_FAULTS or cut.kind in KEY_FAULTS):
            cut = None  # stream faults only
        payload = orjson.dumps(completion_body(completion_id, params, choices, usage))
        if cut is not None:
            return TruncatedResponse(payload, len(payload) // 2)
        return Response(payload, media_type=_JSON)

    def complete_offline(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer a chat body as ``chat_completions`` would, without HTTP, latency or
        faults (a batch job's line): ``(status, completion or error body)``."""
        model = body.get("model")
        try:
            if not isinstance(model, str) or not model:
                raise InvalidRequest("you must provide a model parameter", "model")
            if has_marks(body):  # the chat route's rule: a leaked mark fails the line
                raise InvalidRequest("Unrecognized request argument supplied: cache_control",
                                     "cache_control")  # fmt: skip
            self.stats.count_model("batches", model)
            if self.options.models and model not in self.options.models:
                message = f"The model `{model}` does not exist or you do not have access to it."
                return 404, {"error": {"message": message, "type": "invalid_request_error",
                                       "param": "model", "code": "model_not_found"}}  # fmt: skip
            params = ChatParams.parse({**body, "stream": False})
            items = packed_items(params.messages)
            if items:
                packed = render_packed(items, self._packed_answers(params, items), None, 2)
                texts = [packed] * params.n
            else:
                texts = self._answer_texts(params)
        except _Reject as reject:
            return reject.reply.status_code, orjson.loads(bytes(reject.reply.body))
        except InvalidRequest as exc:
            return 400, {"error": {"message": str(exc), "type": "invalid_request_error",
                                   "param": exc.param, "code": None}}  # fmt: skip
        choices = [build_choice(params, text, i) for i, text in enumerate(texts)]
        usage = usage_body(count_messages(params.messages, params.model).tokens, 0, choices)
        completion_id = "chatcmpl-" + secrets.token_hex(12)
        return 200, completion_body(completion_id, params, choices, usage)

    async def embeddings(self, request: Request) -> Response:
        try:
            body, model = await self._admit(request, "embeddings")
            inputs = _embedding_inputs(body.get("input"), model)
            dimensions = body.get("dimensions") or self.options.embedding_dimensions
            if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
                raise InvalidRequest(
                    f"'dimensions' must be an integer from 1 to {MAX_DIMENSIONS}", "dimensions"
                )
            cut, reply = await self._disturb(request, model)
        except _Reject as reject:
            return reject.reply
        except InvalidRequest as exc:
            return _bad_request(str(exc), exc.param)
        if reply is not None:
            return reply
        encoding = body.get("encoding_format") or "float"
        data = [
            {"object": "embedding", "index": i,
             "embedding": embedding_payload(embedding_vector(raw, dimensions), encoding)}
            for i, (raw, _) in enumerate(inputs)
        ]  # fmt: skip
        tokens = sum(count for _, count in inputs)
        payload = orjson.dumps({
            "object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })  # fmt: skip
        if cut is not None and cut.kind == "cut":  # stream faults do not apply
            return TruncatedResponse(payload, len(payload) // 2)
        return Response(payload, media_type=_JSON)

    async def models(self, request: Request) -> Response:
        self.stats.by_endpoint["models"] += 1
        if (denied := self._check_auth(request)) is not None:
            return denied
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "thrifty-upstream"}
            for name in self.model_names()
        ]
        return _json({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def stats_view(self, request: Request) -> Response:
        return _json(self.stats.snapshot())

    async def stats_reset(self, request: Request) -> Response:
        """Back to a fresh server: stats, ``times`` fault counters and the prompt cache."""
        self.stats.clear()
        self.fault_book.clear()
        self.prefixes.clear()
        self.marked.clear()
        return _json({"status": "ok"})


class _Reject(Exception):
    """Carries a finished error reply out of a handler step."""

    def __init__(self, reply: Response) -> None:
        super().__init__(reply.status_code)
        self.reply = reply


def build_upstream_app(options: UpstreamOptions | None = None) -> Starlette:
    """Build the upstream app; loads the dataset now, so a bad file fails at start.

    The handlers object is at ``app.state.upstream`` (stats, options) for in-process use.
    """
    upstream = Upstream(options or UpstreamOptions())
    batches = UpstreamBatches(upstream.complete_offline, upstream.options.batch_polls)
    messages = MessagesRoute(upstream)
    app = UpstreamApp(
        routes=[
            *batches.routes(),
            Route("/v1/chat/completions", upstream.chat_completions, methods=["POST"]),
            Route("/v1/embeddings", upstream.embeddings, methods=["POST"]),
            Route("/v1/messages", messages.handle, methods=["POST"]),
            Route("/v1/models", upstream.models, methods=["GET"]),
            Route("/health", upstream.health, methods=["GET"]),
            Route("/_stats", upstream.stats_view, methods=["GET"]),
            Route("/_stats/reset", upstream.stats_reset, methods=["POST"]),
        ]
    )
    app.state.upstream = upstream
    app.state.batches = batches
    app.state.messages = messages
    return app
