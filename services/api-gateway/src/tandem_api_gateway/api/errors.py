"""Domain errors mapped to HTTP statuses with one JSON body shape: {error, detail}."""

from __future__ import annotations

import re
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tandem_api_gateway.domain.errors import (
    DomainError,
    InvalidApiKey,
    InvalidCursor,
    InvalidInput,
    InvalidTransition,
    NotPermitted,
)

STATUS: dict[type[DomainError], int] = {
    InvalidInput: 422,
    NotPermitted: 403,
    InvalidTransition: 409,
    InvalidCursor: 400,
    InvalidApiKey: 401,
}


class NotFound(DomainError):
    """The object does not exist, or the caller may not know that it does (HTTP 404)."""


STATUS[NotFound] = 404


def error_name(cls: type[Exception]) -> str:
    """Return the snake_case name of an error class (the body's `error` field)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    return JSONResponse(
        status_code=status, content={"error": error_name(type(exc)), "detail": str(exc)}
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    # 401, 429 and unknown routes get the same {error, detail} body as domain errors.
    assert isinstance(exc, HTTPException)
    name = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    return JSONResponse(
        status_code=exc.status_code,
        content={"error": name, "detail": str(exc.detail)},
        headers=exc.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer every DomainError and HTTP error with its status code and a clear JSON body."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
