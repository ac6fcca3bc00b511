"""Build the cascade stage from its section; check specs are validated here (at start-up)."""

from __future__ import annotations

from typing import Any

from thrifty.cascade.checks import build_checks
from thrifty.cascade.config import CascadeConfig
from thrifty.cascade.stage import CascadeStage, Tier
from thrifty.errors import ConfigError
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.registry import ModelRegistry


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


def build_tiers(section: CascadeConfig) -> list[Tier]:
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
    section: CascadeConfig, registry: ModelRegistry, dispatch: DispatchStage
) -> CascadeStage:
    return CascadeStage(section, build_tiers(section), registry, dispatch)
