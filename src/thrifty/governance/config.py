"""The ``governance`` config section: virtual keys, budgets, rate limits, budget alerts.

::

    governance:
      keys_path: thrifty-keys.db        # enables virtual keys (thrifty keys, /admin/keys)
      keys_store: sqlite                # or postgres: shared by every replica (keys_dsn)
      store: sqlite                     # budgets and rate-limit counters: sqlite | memory
      store_path: thrifty-budgets.db
      budgets:
        - {scope: team:research, period: month, limit_usd: 200}
        - {scope: tag:env=prod, period: day, limit_usd: 20}
      rate_limits: {requests_per_minute: 600, tokens_per_minute: 200000}   # per key
      alerts: {webhook_url: https://hooks.example.com/thrifty}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from thrifty.section import Section

__all__ = ["AlertsConfig", "BudgetConfig", "GovernanceConfig", "RateLimitsConfig"]

_SCOPES = ("key:", "team:", "tag:")



class BudgetConfig(Section):
    """A spending cap on one key, team or tag, per UTC day, UTC month, or for all time."""

    scope: str
    """``key:<key id>``, ``team:<name>``, or ``tag:<name>=<value>`` (``tag:<name>`` for a
    bare tag, whose value is ``true``)."""
    period: Literal["day", "month", "lifetime"] = "month"
    limit_usd: Annotated[float, Field(ge=0, allow_inf_nan=False)]

    @field_validator("scope")
    @classmethod
    def _known_scope(cls, value: str) -> str:
        if not value.startswith(_SCOPES) or not value.partition(":")[2]:
            raise ValueError(
                f"must be key:<id>, team:<name> or tag:<name>[=<value>], got {value!r}"
            )
        return value


class RateLimitsConfig(Section):
    """Default per-key limits; a virtual key's own limits replace them. None = no limit."""

    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1)] | None = None


class AlertsConfig(Section):
    """POST a JSON event when a budget's spend passes each threshold (once per window)."""

    webhook_url: str | None = None
    thresholds: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.5, 0.8, 1.0]
    )
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: Annotated[float, Field(gt=0)] = 5.0

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value


class GovernanceConfig(Section):
    """Who may call, what they may spend, and how fast. Everything is off by default."""

    keys_path: str | None = None
    """SQLite file of the virtual keys; setting it turns virtual keys on."""
    keys_store: Literal["sqlite", "postgres"] = "sqlite"
    """Where virtual keys live: ``sqlite`` (the ``keys_path`` file: the processes of one
    host) or ``postgres`` (every replica; turns virtual keys on by itself)."""
    keys_dsn: str | None = None
    """PostgreSQL for ``keys_store: postgres``; defaults to ``ledger.dsn``, the natural
    place (docs/deploy.md)."""
    store: Literal["sqlite", "memory", "redis"] = "sqlite"
    """Where budget spend and rate-limit counters live (memory: this process only; sqlite:
    the processes of one host; redis: every replica, settings under the top-level
    ``redis:``, outage policy ``redis.budgets_on_error``)."""
    store_path: str = "thrifty-budgets.db"
    store_lock_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    """How long a SQLite budget, rate-limit or key store waits for another process's write
    lock; then the request (or admin call) gets a 503 ``store_unavailable``."""
    budgets: list[BudgetConfig] = Field(default_factory=list)
    rate_limits: RateLimitsConfig = Field(default_factory=RateLimitsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    reservation_ttl_s: Annotated[float, Field(gt=0)] = 900.0
    """A reservation never settled (a crashed process) counts as spent after this long."""
    default_max_output_tokens: Annotated[int, Field(ge=1)] = 4096
    """Worst-case answer length for a request that sets no max_tokens, when the model's own
    output limit is unknown."""

    @property
    def needs_store(self) -> bool:
        """Whether any budget or rate limit can apply (virtual keys may carry their own)."""
        limits = self.rate_limits
        return bool(
            self.budgets
            or self.keys_enabled
            or limits.requests_per_minute
            or limits.tokens_per_minute
        )

    @property
    def keys_enabled(self) -> bool:
        """Whether virtual keys are on (a SQLite file named, or the PostgreSQL store)."""
        return bool(self.keys_path) or self.keys_store == "postgres"


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

