"""Configuration: one YAML file, one validated schema (see ``schema.py``)."""

from thrifty.config.loader import interpolate_env, load_config, parse_config
from thrifty.config.schema import (
    AuthConfig,
    LedgerConfig,
    ModelConfig,
    PriceConfig,
    ProviderConfig,
    RetryConfig,
    ServerConfig,
    ThriftyConfig,
)

__all__ = [
    "AuthConfig",
    "LedgerConfig",
    "ModelConfig",
    "PriceConfig",
    "ProviderConfig",
    "RetryConfig",
    "ServerConfig",
    "ThriftyConfig",
    "interpolate_env",
    "load_config",
    "parse_config",
]
