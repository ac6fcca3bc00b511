"""The ``models:`` section: public model names, their deployments and price overrides."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from thrifty.section import NonNegativeFloat, Section


class PriceConfig(Section):
    """Price override in USD per million tokens."""

    input: NonNegativeFloat
    output: NonNegativeFloat
    cached_input: NonNegativeFloat | None = None
    cache_write: NonNegativeFloat | None = None
    batch_input: NonNegativeFloat | None = None
    batch_output: NonNegativeFloat | None = None


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
        return self

