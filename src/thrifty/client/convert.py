"""Conversions between the pipeline's dicts and the ``openai`` package's types and errors.

Responses are built with the SDK's own lenient constructor, as the SDK does for HTTP
replies, so a library caller gets exactly the objects ``openai.OpenAI`` would return.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx2
import openai
from openai._models import construct_type  # the SDK's own (lenient) response builder
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from thrifty.errors import ThriftyError, to_openai_error

T = TypeVar("T")

_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}

_URL = "thrifty://in-process/v1/"


def to_chat_completion(body: dict[str, Any]) -> ChatCompletion:
    return construct_type(type_=ChatCompletion, value=body)  # type: ignore[no-any-return]


def to_chunk(body: dict[str, Any]) -> ChatCompletionChunk:
    return construct_type(type_=ChatCompletionChunk, value=body)  # type: ignore[no-any-return]


def to_embeddings(body: dict[str, Any]) -> CreateEmbeddingResponse:
    return construct_type(type_=CreateEmbeddingResponse, value=body)  # type: ignore[no-any-return]


def to_openai_exception(
    exc: ThriftyError, endpoint: str, *, in_stream: bool = False
) -> openai.APIError:
    """The ``openai`` exception the official client would raise for this error."""
    status, body, headers = to_openai_error(exc)
    request = httpx2.Request("POST", _URL + endpoint.replace(".", "/"))
    if in_stream:
        return openai.APIError(exc.message, request, body=body["error"])
    response = httpx2.Response(status, headers=headers, json=body, request=request)
    cls = _STATUS_ERRORS.get(
        status, openai.InternalServerError if status >= 500 else openai.APIStatusError
    )
    return cls(exc.message, response=response, body=body["error"])
