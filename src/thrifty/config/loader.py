"""Read the YAML config: interpolate ``${ENV}`` secrets, validate, explain errors by key."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from thrifty.config.schema import ThriftyConfig
from thrifty.errors import ConfigError

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of the tree.

    A variable that is unset and has no default is an error naming the key that uses it,
    so a missing secret fails at start, not at the first request.
    """
    if isinstance(node, dict):
        return {
            k: interpolate_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [interpolate_env(v, env, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set (and has no :-default)")

    return _ENV_PATTERN.sub(substitute, node)


def _format_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and the documented keys of this section)"
        elif item["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{location}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


# Files a config refers to, resolved against the config file's folder.
_RELATIVE_PATHS = (("routing", "predictor"), ("cascade", "verifier"))


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    out = dict(data)
    for section, key in _RELATIVE_PATHS:
        value = (out.get(section) or {}).get(key) if isinstance(out.get(section), dict) else None
        if isinstance(value, str) and not Path(value).is_absolute():
            out[section] = {**out[section], key: str(base / value)}
    return out


def parse_config(
    data: Any, env: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> ThriftyConfig:
    """Validate an already-parsed YAML tree (used by tests and the library).

    ``base_dir`` is where relative file references (a router's predictor, a cascade's
    verifier) are resolved; the current directory when None.
    """
    if not isinstance(data, dict):
        raise ConfigError("invalid configuration: the top level must be a mapping of sections")
    data = interpolate_env(data, os.environ if env is None else env)
    if base_dir is not None:
        data = _resolve_paths(data, base_dir)
    try:
        config = ThriftyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None
    from thrifty.registry import ModelRegistry  # prices are part of a valid config

    ModelRegistry.from_config(config)
    if config.cascade.enabled:
        from thrifty.cascade.build import build_tiers  # check specs fail here, by key

        build_tiers(config.cascade)
    return config


def load_config(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> ThriftyConfig:
    """Load and fully validate a config file; raises :class:`ConfigError` naming the bad key."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}") from None
    return parse_config(data, env, base_dir=file.resolve().parent)
