"""Configuration: one YAML file, one validated schema (see ``schema.py``)."""

from thrifty.config.loader import interpolate_env, load_config, parse_config
from thrifty.config.schema import ServerConfig, ThriftyConfig
from thrifty.governance.config import AuthConfig
from thrifty.ledger.config import LedgerConfig
from thrifty.pipeline.config import RetryConfig
from thrifty.providers.config import ProviderConfig
from thrifty.registry.config import ModelConfig, PriceConfig

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
