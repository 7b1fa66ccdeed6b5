"""Domain errors mapped to HTTP statuses with one JSON body shape: {error, detail}."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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


def install_error_handlers(app: FastAPI) -> None:
    """Answer every DomainError with its status code and a clear JSON body."""
    app.add_exception_handler(DomainError, _domain_error)
