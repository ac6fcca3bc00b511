"""Public model names resolved to deployments, prices and limits, once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from thrifty.errors import ConfigError, ModelNotFound
from thrifty.pricing import ModelPrice, PriceCatalogue
from thrifty.registry.config import ModelConfig


class _PricedProvider(Protocol):
    @property
    def price_prefix(self) -> str | None: ...


class RegistrySource(Protocol):
    """The parts of the config the registry reads (``ThriftyConfig`` has them); a
    protocol so the registry, below the config, does not import it."""

    @property
    def models(self) -> Mapping[str, ModelConfig]: ...

    @property
    def providers(self) -> Mapping[str, _PricedProvider]: ...

    @property
    def passthrough_provider(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str
    upstream_model: str


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """Everything the hot path needs about a model, with no lookups left to do."""

    name: str
    deployments: tuple[Deployment, ...]
    price: ModelPrice | None
    fallbacks: tuple[str, ...] = ()
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: frozenset[str] | None = None
    """None when unknown (routing then assumes the model capable)."""

    @property
    def unpriced(self) -> bool:
        return self.price is None


class ModelRegistry:
    """Resolves the model a request names; configured models always have a price."""

    def __init__(
        self, config: RegistrySource, catalogue: PriceCatalogue, models: dict[str, ResolvedModel]
    ):
        self._config = config
        self._catalogue = catalogue
        self._models = models
        self._passthrough: dict[str, ResolvedModel] = {}

    @classmethod
    def from_config(
        cls, config: RegistrySource, catalogue: PriceCatalogue | None = None
    ) -> ModelRegistry:
        catalogue = catalogue or PriceCatalogue.default()
        models = {
            name: _resolve(name, model, config, catalogue) for name, model in config.models.items()
        }
        return cls(config, catalogue, models)

    @property
    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str) -> ResolvedModel:
        """The configured or pass-through model; :class:`ModelNotFound` otherwise."""
        model = self._models.get(name) or self._passthrough.get(name)
        if model is not None:
            return model
        provider = self._config.passthrough_provider
        if provider is None:
            raise ModelNotFound(
                f"The model '{name}' does not exist or is not served by this gateway.",
                param="model",
            )
        hint = self._config.providers[provider].price_prefix or provider
        model = ResolvedModel(
            name=name,
            deployments=(Deployment(provider, name),),
            price=self._catalogue.lookup(name, provider_hint=hint),
        )
        if len(self._passthrough) < 10_000:  # bounded: names come from clients
            self._passthrough[name] = model
        return model


def _resolve(
    name: str, model: ModelConfig, config: RegistrySource, catalogue: PriceCatalogue
) -> ResolvedModel:
    if model.deployments:
        deployments = tuple(Deployment(d.provider, d.model) for d in model.deployments)
    else:
        assert model.provider is not None  # guaranteed by the schema
        deployments = (Deployment(model.provider, model.model or name),)
    first = deployments[0]
    if model.free:
        price = _price_override(
            name,
            input=0.0,
            output=0.0,
            context_window=model.context_window,
            max_output_tokens=model.max_output_tokens,
        )
    elif model.price is not None:
        p = model.price
        price = _price_override(
            name,
            input=p.input,
            output=p.output,
            cached_input=p.cached_input,
            cache_write=p.cache_write,
            batch_input=p.batch_input,
            batch_output=p.batch_output,
            cache_write_1h=p.cache_write_1h,
            reasoning=p.reasoning,
            per_request_usd=p.per_request_usd,
            context_window=model.context_window,
            max_output_tokens=model.max_output_tokens,
        )
    else:
        # catalogue_name names the entry itself: no provider hint bends it
        hint = config.providers[first.provider].price_prefix or first.provider
        wanted = model.catalogue_name or first.upstream_model
        price = catalogue.lookup(wanted, provider_hint=None if model.catalogue_name else hint)
        if price is None:
            close = ", ".join(catalogue.suggest(wanted, 3)) or "none"
            zero = (
                " (the catalogue lists it at $0, which counts as unknown; "
                "set free: true if it really costs nothing)"
                if catalogue.zero_priced(wanted)
                else ""
            )
            raise ConfigError(
                f"models.{name}: no price known for {wanted!r}{zero} (provider "
                f"{first.provider!r}; close catalogue names: {close}); add price: "
                "{input: ..., output: ...} in USD per million tokens, catalogue_name: <a name "
                "`thrifty prices show` knows>, or install a newer catalogue with "
                "`thrifty prices update --from FILE`"
            )
    return ResolvedModel(
        name=name,
        deployments=deployments,
        price=price,
        fallbacks=tuple(model.fallbacks),
        context_window=model.context_window or price.max_input_tokens,
        max_output_tokens=model.max_output_tokens or price.max_output_tokens,
        capabilities=_capabilities(model, price),
    )


def _capabilities(model: ModelConfig, price: ModelPrice) -> frozenset[str] | None:
    if model.capabilities is not None:
        return frozenset(model.capabilities)
    if price.source == "catalogue":
        return price.capabilities
    return None


def _price_override(name: str, **per_million: float | int | None) -> ModelPrice:
    try:
        return ModelPrice.from_per_million(name, **per_million)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"models.{name}.price: {exc}") from None
