"""The ``models:`` section: public model names, their deployments and price overrides."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from thrifty.section import NonNegativeFloat, Section


class PriceConfig(Section):
    """Price override in USD per million tokens (an explicit 0 input and output means free)."""

    input: NonNegativeFloat
    output: NonNegativeFloat
    cached_input: NonNegativeFloat | None = None
    cache_write: NonNegativeFloat | None = None
    batch_input: NonNegativeFloat | None = None
    batch_output: NonNegativeFloat | None = None
    cache_write_1h: NonNegativeFloat | None = None
    """1-hour cache writes (Anthropic), when dearer than ``cache_write``."""
    reasoning: NonNegativeFloat | None = None
    """Reasoning tokens, when billed apart from ``output``."""
    per_request_usd: NonNegativeFloat | None = None
    """A fee per call in USD (not per million tokens), on top of the tokens."""


class DeploymentConfig(Section):
    provider: str
    model: str


class ModelConfig(Section):
    """A public model name and where it is served.

    Either ``provider`` + ``model`` (one deployment) or ``deployments`` (tried in order).
    """

    provider: str | None = None
    model: str | None = None
    deployments: list[DeploymentConfig] = Field(default_factory=list)
    price: PriceConfig | None = None
    free: bool = False
    """The model costs nothing (self-hosted): priced at $0 on purpose. A $0 catalogue
    price does not count as free; only this (or an explicit ``price`` of 0) does."""
    catalogue_name: str | None = None
    context_window: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    fallbacks: list[str] = Field(default_factory=list)
    capabilities: (
        list[Literal["tools", "vision", "json_schema", "reasoning", "prompt_caching"]] | None
    ) = None
    """What the model supports, for routing guards (default: from the price catalogue)."""

    @model_validator(mode="after")
    def _one_way_to_deploy(self) -> ModelConfig:
        if self.deployments and (self.provider or self.model):
            raise ValueError("give either provider/model or deployments, not both")
        if not self.deployments and not self.provider:
            raise ValueError("needs provider (and optionally model) or a deployments list")
        if self.free and self.price is not None:
            raise ValueError("give either free: true or a price, not both")
        return self
