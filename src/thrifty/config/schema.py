"""The configuration schema: one YAML file, validated once at start-up.

Every section forbids unknown keys so a typo is an error that names the key, never a
setting silently ignored. Prices are per **million** tokens in USD, as providers publish
them. Technique sections exist from day one, each off; a technique that has not landed
yet refuses ``enabled: true`` rather than pretending to run.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from thrifty.admission.config import GovernanceConfig
from thrifty.batching.config import BatchingConfig
from thrifty.cache.config import PairCheckConfig
from thrifty.compression.config import CompressionConfig
from thrifty.dashboard.config import DashboardConfig
from thrifty.metrics.config import MetricsConfig
from thrifty.scaleout.config import RedisConfig

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    graceful_timeout_s: PositiveFloat = 30.0


class AuthConfig(Section):
    """Gateway keys clients must present (``Authorization: Bearer <key>``)."""

    enabled: bool = True
    keys: list[str] = Field(default_factory=list)
    # Keys for the admin API and the dashboard; never accepted on the model endpoints.
    admin_keys: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _keys_when_enabled(self) -> AuthConfig:
        if self.enabled and not [k for k in self.keys + self.admin_keys if k]:
            raise ValueError(
                "auth is enabled but no keys are configured: add auth.keys "
                "(e.g. ['${THRIFTY_KEY}']), auth.admin_keys (to create virtual keys), "
                "or set auth.enabled: false"
            )
        return self


class ProviderConfig(Section):
    """An OpenAI-compatible upstream (OpenAI, DeepSeek, DashScope, OpenRouter, vLLM, ...)."""

    base_url: str
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: PositiveFloat = 120.0
    connect_timeout_s: PositiveFloat = 10.0
    max_connections: int = Field(default=256, ge=1)
    price_prefix: str | None = None
    """Catalogue prefix for price lookups (``deepseek`` → ``deepseek/<model>``);
    defaults to the provider's name."""
    stream_usage: bool = True
    """Ask for ``stream_options.include_usage`` so streams are priced from true usage."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/")


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


class RetryConfig(Section):
    max_attempts: int = Field(default=3, ge=1, le=10)
    """Tries per deployment on 429, 5xx and connection errors (1 = no retry)."""
    backoff_initial_s: NonNegativeFloat = 0.2
    backoff_max_s: NonNegativeFloat = 8.0
    max_retry_after_s: NonNegativeFloat = 20.0
    """A longer ``Retry-After`` than this moves on to the next deployment instead of waiting."""


class LedgerConfig(Section):
    store: Literal["sqlite", "postgres"] = "sqlite"
    path: str = "thrifty-ledger.db"
    dsn: str | None = None
    """PostgreSQL connection string for ``store: postgres`` (docs/deploy.md)."""
    flush_interval_ms: int = Field(default=200, ge=10, le=60_000)
    capture_bodies: bool = False
    """Also store each chat request's messages and answer (off by default: prompts may hold
    personal data). Needed to replay your own traffic: ``thrifty datasets import ledger``."""

    @model_validator(mode="after")
    def _dsn_for_postgres(self) -> LedgerConfig:
        if self.store == "postgres" and not self.dsn:
            raise ValueError("dsn: store 'postgres' needs a dsn (postgresql://user@host/db)")
        return self


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


TASKS = ("chat", "code", "math", "summarization", "translation", "extraction", "creative")


class RoutingConfig(Section):
    """Route requests that leave the choice to Thrifty to the cheapest capable model.

    A request is routed when it names no model, names ``auto``, or names a model in
    ``applies_to``; ``x-thrifty-route: off`` (or a model name) overrides per request.
    """

    enabled: bool = False
    strategy: Literal["rules", "threshold", "tradeoff"] = "rules"
    """rules: per task, the first listed model that fits; threshold: the cheapest model
    whose predicted quality is ≥ threshold × the reference model's; tradeoff: the model
    maximising predicted quality − tradeoff_lambda × expected cost per 1k requests (USD)."""
    classifier: Literal["rules", "learned"] = "rules"
    rules: dict[str, Any] = Field(default_factory=dict)
    """Overrides for the rule task classifier (see docs/routing.md)."""
    candidates: list[str] = Field(default_factory=list)
    """Models the router may pick (default: every configured chat model)."""
    tasks: dict[str, list[str]] = Field(default_factory=dict)
    """Per task, its candidate models in order of preference (rules) or as a set."""
    applies_to: list[str] = Field(default_factory=list)
    predictor: str | None = None
    """Quality predictor trained by ``thrifty tune`` (a .npz file; relative to the config)."""
    threshold: Annotated[float, Field(ge=0, le=1.5)] = 0.95
    tradeoff_lambda: NonNegativeFloat = 0.0
    reference_model: str | None = None
    """What predicted quality is compared with (default: baseline_model, else default_model)."""

    @model_validator(mode="after")
    def _consistent(self) -> RoutingConfig:
        unknown = sorted(set(self.tasks) - set(TASKS))
        if unknown:
            raise ValueError(f"tasks: unknown task(s) {unknown}; known: {list(TASKS)}")
        if self.enabled and self.strategy != "rules" and not self.predictor:
            raise ValueError(f"strategy {self.strategy!r} needs a predictor (run thrifty tune)")
        return self


class TierConfig(Section):
    model: str
    checks: list[str | dict[str, Any]] = Field(default_factory=lambda: ["heuristics", "format"])
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    """The tier's answer is accepted when its combined check score is ≥ this."""


class CascadeConfig(Section):
    """Try a cheap model first, check its answer, escalate when the check fails.

    Applies to the same requests as routing (see ``applies_to``); when routing chose a
    model that is a tier, the cascade starts there. The last tier is always accepted.
    """

    enabled: bool = False
    tiers: list[TierConfig] = Field(default_factory=list)
    applies_to: list[str] = Field(default_factory=list)
    judge_model: str | None = None
    verifier: str | None = None
    """Learned answer verifier trained by ``thrifty tune`` (a .npz file; relative to the config)."""

    @model_validator(mode="after")
    def _tiers(self) -> CascadeConfig:
        if self.enabled and len(self.tiers) < 2:
            raise ValueError("tiers: a cascade needs at least two tiers")
        return self


GUARDS = ("numbers", "units", "negation", "entities", "order")


class ExactCacheConfig(Section):
    enabled: bool = True


class SemanticCacheConfig(Section):
    """Serve a stored answer to a *similar* question — only when the guards agree."""

    enabled: bool = False
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    """Cosine similarity of the final user messages at or above which a hit is possible;
    None: the pair check's shipped operating point (0.92 with the pair check off)."""
    guards: list[Literal["numbers", "units", "negation", "entities", "order"]] = Field(
        default_factory=lambda: list(GUARDS)
    )
    max_entries: int = Field(default=100_000, ge=1)
    multi_turn: bool = False
    """Off by default: earlier turns make "the same question" mean something else."""
    tools: bool = False
    """Off by default for requests with tools (answers depend on the tool results)."""
    max_temperature: NonNegativeFloat = 0.0
    verify_model: str | None = None
    """Optional second stage: this model must confirm that the two requests want the
    same answer before a hit is served (its calls are the cache's overhead)."""
    pair_check: PairCheckConfig = Field(default_factory=PairCheckConfig)


class CacheConfig(Section):
    """Exact and semantic answer caches, scoped per tenant (the caller's key by default)."""

    enabled: bool = False
    store: Literal["sqlite", "memory", "redis"] = "sqlite"
    """redis: shared by every replica (settings under the top-level ``redis:``)."""
    path: str = "thrifty-cache.db"
    ttl_s: PositiveFloat | None = 86_400.0
    max_entries: int = Field(default=100_000, ge=1)
    max_bytes: int | None = Field(default=None, ge=1024)
    scope: Literal["key", "global"] = "key"
    """key: each caller key has its own cache; global: all callers share one."""
    cache_nondeterministic: bool = False
    """Also cache sampled requests (temperature > 0 or unset); a request can allow it with
    ``x-thrifty-cache: allow-random``."""
    exact: ExactCacheConfig = Field(default_factory=ExactCacheConfig)
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)


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
        ]
        for where, model in named:
            if model is not None and model not in self.models:
                raise ValueError(f"{where}: {model!r} is not defined under models")
        if (self.routing.enabled or self.cascade.enabled) and not self.default_model:
            raise ValueError("default_model: routing and cascades need one (it answers 'auto')")
