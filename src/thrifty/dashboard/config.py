"""The ``dashboard`` config section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DashboardConfig(BaseModel):
    """``/dashboard``: log in with one of ``auth.admin_keys``; without any it stays locked.

    ``session_ttl_s``: how long a login lasts. ``secure_cookie``: send the session cookie
    only over HTTPS; ``None`` decides per request (on when the request came over HTTPS),
    set ``true`` behind a proxy that terminates TLS.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    session_ttl_s: int = Field(default=12 * 3600, ge=60, le=30 * 86400)
    secure_cookie: bool | None = None
