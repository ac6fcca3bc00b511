"""The one error tree of Thrifty, and its mapping to OpenAI-style error responses.

::

    ThriftyError                      500 server_error
    ├── ConfigError                   (start-up only; never reaches a client)
    ├── InvalidRequest                400 invalid_request_error
    │   ├── ModelNotFound             404 invalid_request_error / model_not_found
    │   └── PayloadTooLarge           413 invalid_request_error
    ├── AuthenticationFailed          401 authentication_error
    ├── PermissionDenied              403 permission_error
    ├── RateLimited                   429 rate_limit_error (+ Retry-After)
    └── UpstreamError                 status of the upstream, else 502
        ├── UpstreamTimeout           504
        ├── UpstreamUnavailable       502 (connection refused/reset)
        └── StreamInterrupted         502 (a stream cut mid-answer)

Every error a client sees is rendered by :func:`to_openai_error`, so the gateway and the
library speak the same ``{"error": {"message", "type", "param", "code"}}`` shape the
official SDKs parse.
"""

from __future__ import annotations

from typing import Any


class ThriftyError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}


class ConfigError(ThriftyError):
    """The configuration is invalid; raised at start-up with the bad key in the message."""


class InvalidRequest(ThriftyError):
    status = 400
    type = "invalid_request_error"


class ModelNotFound(InvalidRequest):
    status = 404
    code = "model_not_found"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class AuthenticationFailed(ThriftyError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ThriftyError):
    status = 403
    type = "permission_error"


class RateLimited(ThriftyError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class StoreUnavailable(ThriftyError):
    """A shared store (Redis) that admission needs cannot be reached, and its policy is to
    fail closed: refusing is safer than spending unaccounted money."""

    status = 503
    type = "service_unavailable"
    code = "store_unavailable"


class UpstreamError(ThriftyError):
    """The provider answered with an error (status kept when it is meaningful)."""

    status = 502
    type = "upstream_error"
    retry_after: float | None = None
    """Seconds the provider asked us to wait (its Retry-After), when it said."""
    upstream_status: int | None = None
    """The provider's HTTP status; None when no reply came."""

    def __init__(self, message: str, *, retryable: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retryable = retryable


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    delivered = True
    """The provider had the request (it timed out answering, not connecting), so it may
    bill it: dispatch books such a try at its estimated cost."""


class UpstreamUnavailable(UpstreamError):
    status = 502
    code = "upstream_unavailable"


class StreamInterrupted(UpstreamError):
    status = 502
    code = "stream_interrupted"


def to_openai_error(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Map any exception to (HTTP status, OpenAI error body, extra headers).

    Unknown exceptions become a generic 500 whose message carries no traceback or secret.
    """
    if isinstance(exc, ThriftyError):
        body = {
            "error": {
                "message": exc.message,
                "type": exc.type,
                "param": exc.param,
                "code": exc.code,
            }
        }
        return exc.status, body, exc.headers
    body = {
        "error": {
            "message": "Internal error in the Thrifty gateway; see its logs.",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    return 500, body, {}
