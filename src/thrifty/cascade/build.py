"""Build the cascade stage from config; check specs are validated here (at start-up)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from thrifty.cascade.checks import build_checks
from thrifty.cascade.stage import CascadeStage, Tier
from thrifty.errors import ConfigError
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.registry import ModelRegistry

if TYPE_CHECKING:
    from thrifty.config.schema import ThriftyConfig


def _specs(specs: list[str | dict[str, Any]], verifier: str | None) -> list[str | dict[str, Any]]:
    """The ``verifier`` check reads its file from ``cascade.verifier``."""
    out: list[str | dict[str, Any]] = []
    for spec in specs:
        name = spec if isinstance(spec, str) else spec.get("name")
        if name == "verifier":
            import thrifty.cascade.verifier  # noqa: F401  (registers the check)

            options = {} if isinstance(spec, str) else dict(spec)
            out.append({**options, "name": "verifier", "path": verifier})
        else:
            out.append(spec)
    return out


def build_tiers(config: ThriftyConfig) -> list[Tier]:
    section = config.cascade
    tiers = []
    for index, tier in enumerate(section.tiers):
        try:
            checks = build_checks(
                _specs(tier.checks, section.verifier), has_judge=bool(section.judge_model)
            )
        except (ValueError, OSError) as exc:
            raise ConfigError(f"cascade.tiers[{index}].checks: {exc}") from None
        tiers.append(Tier(tier.model, checks, tier.threshold))
    return tiers


def build_cascade(
    config: ThriftyConfig, registry: ModelRegistry, dispatch: DispatchStage
) -> CascadeStage:
    return CascadeStage(config.cascade, build_tiers(config), registry, dispatch)
