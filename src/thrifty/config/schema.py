"""The configuration schema: one YAML file, validated once at start-up.

Every section forbids unknown keys so a typo is an error that names the key, never a
setting silently ignored. Prices are per **million** tokens in USD, as providers publish
them. Technique sections exist from day one, each off; a technique that has not landed
yet refuses ``enabled: true`` rather than pretending to run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from thrifty.batching.config import BatchingConfig
from thrifty.cache.config import CacheConfig
from thrifty.cascade.config import CascadeConfig
from thrifty.compression.config import CompressionConfig
from thrifty.governance.config import AuthConfig, GovernanceConfig
from thrifty.ledger.config import LedgerConfig
from thrifty.metrics.config import MetricsConfig
from thrifty.pipeline.config import RetryConfig
from thrifty.providers.config import ProviderConfig
from thrifty.registry.config import ModelConfig
from thrifty.routing.config import RoutingConfig
from thrifty.section import PositiveFloat, Section
from thrifty.shadow.config import ShadowConfig
from thrifty.stores.config import RedisConfig


class ServerConfig(Section):
    """The HTTP server. Every bound below is per request or connection (docs/deploy.md,
    "Limits"): ``max_body_bytes`` every route's body (413; uploads have
    ``batching.jobs.max_file_bytes``), ``max_header_bytes`` the request line and headers
    (431), ``header_timeout_s`` until the headers are complete (408), ``body_timeout_s``
    the longest pause in a body being read (the connection is closed).

    ``allowed_hosts``: the ``Host`` names the gateway answers to (``"*"``: any); unset, a
    gateway without auth answers only to the loopback names and its bind host, and one
    with auth to any. ``allowed_origins``: origins (``https://app.example``) whose pages
    may call the gateway besides its own (docs/hardening.md, "Web pages")."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    header_timeout_s: PositiveFloat = 30.0
    body_timeout_s: PositiveFloat = 60.0
    graceful_timeout_s: PositiveFloat = 30.0
    allowed_hosts: list[str] | None = None
    allowed_origins: list[str] = Field(default_factory=list)


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class DashboardConfig(Section):
    """``/dashboard``: log in with one of ``auth.admin_keys``; without any it stays locked.

    ``session_ttl_s``: how long a login lasts. ``secure_cookie``: send the session cookie
    only over HTTPS; ``None`` decides per request (on when the request came over HTTPS),
    set ``true`` behind a proxy that terminates TLS. ``login_max_failures`` wrong keys in a
    row from one client address lock its login out for ``login_lockout_s`` (429).
    """

    enabled: bool = True
    session_ttl_s: int = Field(default=12 * 3600, ge=60, le=30 * 86400)
    secure_cookie: bool | None = None
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_lockout_s: int = Field(default=300, ge=1, le=86400)


class ThriftyConfig(Section):
    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(default_factory=lambda: AuthConfig(enabled=False))
    providers: dict[str, ProviderConfig]
    models: dict[str, ModelConfig]
    default_model: str | None = None
    """Used when a request names no model."""
    baseline_model: str | None = None
    """What savings are measured against; defaults to the model each request asked for."""
    passthrough_provider: str | None = None
    """Send requests for models not listed under ``models`` to this provider as-is."""
    retries: RetryConfig = Field(default_factory=RetryConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    compression: CompressionConfig = Field(default_factory=CompressionConfig)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)

    @model_validator(mode="after")
    def _references_exist(self) -> ThriftyConfig:
        for name, model in self.models.items():
            providers = (
                [model.provider] if model.provider else [d.provider for d in model.deployments]
            )
            for provider in providers:
                if provider not in self.providers:
                    raise ValueError(
                        f"models.{name}: provider {provider!r} is not defined under providers "
                        f"(defined: {sorted(self.providers)})"
                    )
            for fallback in model.fallbacks:
                if fallback not in self.models:
                    raise ValueError(f"models.{name}.fallbacks: unknown model {fallback!r}")
        for key in ("default_model", "baseline_model"):
            value = getattr(self, key)
            if value is not None and value not in self.models:
                raise ValueError(f"{key}: {value!r} is not defined under models")
        self._technique_models_exist()
        if self.shadow.enabled and not self.ledger.capture_bodies:
            raise ValueError(
                "shadow: shadow evaluation needs ledger.capture_bodies: true (the answers it "
                "grades are stored to become a replay dataset)"
            )
        if self.passthrough_provider and self.passthrough_provider not in self.providers:
            raise ValueError(
                f"passthrough_provider: {self.passthrough_provider!r} is not defined "
                "under providers"
            )
        return self

    def _technique_models_exist(self) -> None:
        named: list[tuple[str, str | None]] = [
            ("routing.candidates", m) for m in self.routing.candidates
        ]
        named += [(f"routing.tasks.{t}", m) for t, ms in self.routing.tasks.items() for m in ms]
        named += [(f"cascade.tiers[{i}].model", t.model) for i, t in enumerate(self.cascade.tiers)]
        named += [
            ("routing.reference_model", self.routing.reference_model),
            ("cascade.judge_model", self.cascade.judge_model),
            ("cache.semantic.verify_model", self.cache.semantic.verify_model),
            ("compression.abstractive.model", self.compression.abstractive.model),
            ("shadow.judge_model", self.shadow.judge_model),
        ]
        named += [("shadow.candidates", m) for m in self.shadow.candidates]
        for where, model in named:
            if model is not None and model not in self.models:
                raise ValueError(f"{where}: {model!r} is not defined under models")
        if (self.routing.enabled or self.cascade.enabled) and not self.default_model:
            raise ValueError("default_model: routing and cascades need one (it answers 'auto')")
