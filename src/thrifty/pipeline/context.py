"""What travels down the pipeline (``Context``) and what comes back up (``Reply``)."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from thrifty.ledger.record import AttemptRecord
from thrifty.usage import Usage

CHAT = "chat.completions"
EMBEDDINGS = "embeddings"


def new_request_id() -> str:
    """``thr-`` and 24 hex digits: 48 bits of Unix time in ms, then 48 random bits.

    Unique, not secret, and time-ordered: the ledger's primary keys are request ids, and
    ids that grow with time are appended to the index's last page instead of dirtying a
    random page per row (measured: inserts 4x cheaper, and flat as the table grows,
    where random ids slowed down with every 40k rows). The random part comes from
    ``random`` (reseeded in a forked child), not ``uuid4``: ``os.urandom`` is a system
    call that releases the GIL, and under load the ledger thread then holds it.
    """
    return f"thr-{time.time_ns() // 1_000_000:012x}{random.getrandbits(48):012x}"


@dataclass(slots=True)
class Context:
    """One request on its way through the stages.

    ``body`` is the OpenAI request as the caller sent it; stages that rewrite the
    request (compress, route) change ``body``/``model`` and note what they did in
    ``techniques``. ``attempts`` collects every model call made for this request.
    ``baseline_model`` is what savings are measured against (see ``build_context``).
    ``auto`` is true when the caller left the model to Thrifty (no model, or ``auto``).
    ``removed_input`` holds the input tokens a stage removed from the caller's prompt
    (compression): the baseline, the request sent as is, still pays for them.
    ``finalizers`` run when the request ends (for a stream, at its end), before the
    ledger row is built (shadow evaluation starts there). The ledger books savings itself,
    from ``techniques``, ``removed_input`` and ``attempts`` (``pipeline/attribution.py``),
    and leaves what it booked in ``booked_savings`` (the library's ``reply.thrifty`` reads it).
    ``caller`` is who the request was authenticated as, for the governance stage (a
    ``governance`` ``Caller``; typed ``object`` here since governance sits above the
    pipeline); None is anonymous. ``api`` names the dialect the client spoke (``responses``,
    ``messages``, ``completions``) when the server mapped it onto ``endpoint``.
    """

    endpoint: str
    body: dict[str, Any]
    requested_model: str
    model: str
    baseline_model: str
    stream: bool = False
    auto: bool = False
    key_id: str | None = None
    team: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    controls: dict[str, str] = field(default_factory=dict)
    request_id: str = field(default_factory=new_request_id)
    ts: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    attempts: list[AttemptRecord] = field(default_factory=list)
    techniques: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed_input: Usage | None = None
    booked_savings: dict[str, float] = field(default_factory=dict)
    finalizers: list[Callable[[Reply | None], None]] = field(default_factory=list)
    caller: object = None
    api: str | None = None

    @property
    def client_wants_usage(self) -> bool:
        options = self.body.get("stream_options")
        return bool(isinstance(options, dict) and options.get("include_usage"))

    def next_seq(self) -> int:
        return len(self.attempts)


@dataclass(slots=True)
class Reply:
    """The answer to a request: a complete body, or a stream of chunk dicts.

    For a stream, ``usage`` and ``finished`` are filled in as the stream is consumed;
    whoever wraps ``chunks`` must iterate it to the end or ``aclose`` it.
    """

    model: str
    provider: str
    body: dict[str, Any] | None = None
    chunks: AsyncIterator[dict[str, Any]] | None = None
    usage: Usage | None = None
    attempt: AttemptRecord | None = None
    ttft_ms: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    streamed_text: str | None = None

    def answer_text(self) -> str | None:
        """The first choice's text (for a stream: what was streamed so far)."""
        if self.body is None:
            return self.streamed_text
        choices = self.body.get("choices") or [{}]
        return (choices[0].get("message") or {}).get("content")

    @property
    def is_stream(self) -> bool:
        return self.chunks is not None
