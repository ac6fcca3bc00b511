"""The ``compression`` config section (hooked into ``config/schema.py`` as one field).

Defined here, not in the schema module, so the technique's settings live with it; the
base class repeats the schema's rule: unknown keys are errors that name the key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from thrifty.section import Section

Role = Literal["system", "developer", "user", "assistant", "tool"]
Ratio = Annotated[float, Field(ge=1.0, le=50.0)]
Weight = Annotated[float, Field(ge=0.0, le=1.0)]



class ExtractiveConfig(Section):
    """Query-aware extractive compression: keep the context's best sentences, in order.

    Default weights: the best of a grid on the tuning split of ``bench/compression.py``
    (only their ratios matter)."""

    enabled: bool = True
    ratio: Ratio = 3.0
    """Target reduction of the compressible prose: tokens before / tokens after."""
    embedding_weight: Weight = 0.2
    """Weight of the embedding similarity to the final question (shipped static embedder)."""
    lexical_weight: Weight = 0.6
    """Weight of the BM25 score against the final question."""
    position_weight: Weight = 0.1
    """Weight of the position in its message (openings and endings score higher)."""
    paragraph_weight: Weight = 0.4
    """Weight of the BM25 score of the unit's whole paragraph (keeps relevant passages whole)."""
    neighbour_weight: Weight = 0.5
    """Share of the better neighbour's score a sentence inherits (keeps evidence contiguous)."""
    json_members: bool = False
    """Also select among the top-level members of JSON blocks (off: JSON is kept whole;
    a schema or config in a prompt usually must stay complete)."""

    @model_validator(mode="after")
    def _some_weight(self) -> ExtractiveConfig:
        if self.embedding_weight + self.lexical_weight + self.position_weight <= 0:
            raise ValueError("embedding_weight, lexical_weight and position_weight are all 0")
        return self


class AbstractiveConfig(Section):
    """A cheap model summarises long context; summaries are reused by content hash."""

    enabled: bool = False
    model: str | None = None
    """The summariser (a model under ``models``); its calls are compression's overhead."""
    roles: list[Role] = Field(default_factory=lambda: ["system"])
    """Messages of these roles are summarised (the rest get extractive compression)."""
    ratio: Ratio = 4.0
    """Target reduction: the summary asks for tokens before / ratio."""
    min_tokens: int = Field(default=1000, ge=1)
    """A message shorter than this is not worth a summary call."""
    max_entries: int = Field(default=1000, ge=1)
    """Summaries kept in memory (per gateway worker)."""

    @model_validator(mode="after")
    def _model_when_enabled(self) -> AbstractiveConfig:
        if self.enabled and not self.model:
            raise ValueError("model: abstractive compression needs a summariser model")
        return self


class PromptCacheConfig(Section):
    """Provider prompt caching: do not compress a repeated prefix the provider bills cheaper.

    A prefix (the messages before the final question) seen within ``ttl_s`` for the same
    model is a *repeated* prefix: sent unchanged, the provider serves it from its cache at
    the cached-input price ``c``. Query-aware (extractive) compression changes it on every
    request, so the kept tokens are billed at the full input price ``p``. It is compressed
    only when ``p / ratio < c`` (see docs/compression.md).
    """

    respect: bool = True
    ttl_s: Annotated[float, Field(gt=0)] = 300.0
    """How long a provider keeps a prefix cached (OpenAI and Anthropic: about 5 minutes)."""
    min_tokens: int = Field(default=1024, ge=0)
    """Providers cache only prompts at least this long (OpenAI, Anthropic: 1024)."""
    max_entries: int = Field(default=10_000, ge=1)


class CompressionConfig(Section):
    """Send fewer input tokens: a lossless pass, then extractive or abstractive compression.

    Only the context is compressed — the system prompt, documents and earlier turns — never
    the final user message, code blocks, or text marked ``<keep>…</keep>``.
    ``x-thrifty-compress: off`` skips compression for one request.
    """

    enabled: bool = False
    roles: list[Role] = Field(default_factory=lambda: ["system", "developer", "user", "tool"])
    """Messages of these roles (before the final user message) may be compressed."""
    min_tokens: int = Field(default=1000, ge=0)
    """Trigger: compress only when the compressible messages hold at least this many tokens."""
    min_message_tokens: int = Field(default=200, ge=0)
    """A message shorter than this gets only the lossless pass."""
    lossless: bool = True
    extractive: ExtractiveConfig = Field(default_factory=ExtractiveConfig)
    abstractive: AbstractiveConfig = Field(default_factory=AbstractiveConfig)
    prompt_cache: PromptCacheConfig = Field(default_factory=PromptCacheConfig)
    applies_to: list[str] = Field(default_factory=list)
    """Only requests for these models (empty: every chat request)."""
