"""A key's technique overrides applied to the config, validated like the config file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from thrifty.errors import InvalidRequest
from thrifty.governance.keys.identity import Overrides

if TYPE_CHECKING:
    from thrifty.config.schema import ThriftyConfig

__all__ = ["apply_overrides"]


def apply_overrides(config: ThriftyConfig, overrides: Overrides) -> ThriftyConfig:
    """``config`` with ``routing``/``cascade``/``cache`` switched as ``overrides`` say.

    Turning a technique on for a key needs its section filled in the config (tiers for a
    cascade, ``default_model`` for routing); otherwise this raises an
    :class:`InvalidRequest` that names the problem, when the key is created.
    """
    if overrides.empty:
        return config
    data = config.model_dump()
    for section, enabled in overrides.as_dict().items():
        data[section] = {**data[section], "enabled": enabled}
    try:
        return type(config).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRequest(
            f"overrides {overrides.as_dict()} do not fit this gateway's config: {problems}",
            param="overrides",
            code="invalid_overrides",
        ) from None
