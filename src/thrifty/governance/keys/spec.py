"""What an admin may say about a new virtual key (admin API body and CLI flags alike)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["OVERRIDABLE", "KeyBudgetSpec", "KeySpec", "OverridesSpec"]


#: Largest rate limit a key may have: the stores keep counts in 64-bit integers (SQLite,
#: PostgreSQL) and floats (Redis scores), exact up to 2**53.
MAX_RATE = 2**53


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OverridesSpec(_Spec):
    """Turn a technique on or off for this key only (unset: the config decides)."""

    routing: bool | None = None
    cascade: bool | None = None
    cache: bool | None = None


#: The techniques a key may switch, in the order keys list them (JSON, ``thrifty keys``
#: flags). ``thrifty.techniques`` marks the same rows ``overridable`` (a test checks).
OVERRIDABLE: tuple[str, ...] = tuple(OverridesSpec.model_fields)


class KeyBudgetSpec(_Spec):
    period: Literal["day", "month", "lifetime"] = "month"
    limit_usd: Annotated[float, Field(ge=0, allow_inf_nan=False)]


class KeySpec(_Spec):
    """A virtual key to create. Unknown fields are errors that name the field."""

    owner: str | None = None
    name: str | None = None
    team: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    """``{"env": "prod"}``; a list ``["env=prod", "beta"]`` is accepted too (bare: ``true``)."""
    models: list[str] | None = None
    """Models the key may ask for (None: all); ``auto`` must be listed to use routing."""
    overrides: OverridesSpec = Field(default_factory=OverridesSpec)
    budgets: list[KeyBudgetSpec] = Field(default_factory=list)
    requests_per_minute: Annotated[int, Field(ge=1, le=MAX_RATE)] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1, le=MAX_RATE)] | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            tags: dict[str, str] = {}
            for item in value:
                if not isinstance(item, str) or not item.partition("=")[0].strip():
                    raise ValueError(f"a tag must be 'name' or 'name=value', got {item!r}")
                name, sep, tag_value = item.partition("=")
                tags[name.strip()] = tag_value.strip() if sep else "true"
            return tags
        return value

    @field_validator("tags")
    @classmethod
    def _no_nul_in_tags(cls, value: dict[str, str]) -> dict[str, str]:
        if any("\x00" in k or "\x00" in v for k, v in value.items()):
            raise ValueError("tags must not contain NUL characters (the ledger cannot store them)")
        return value

    @field_validator("team", "owner", "name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        if value is not None and "\x00" in value:  # PostgreSQL text cannot hold it
            raise ValueError("must not contain NUL characters")
        return value
