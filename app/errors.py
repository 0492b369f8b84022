"""Domain exceptions raised by services, and the one table that maps them to HTTP."""

from __future__ import annotations

import logging
import math
from http import HTTPMethod

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of the errors a service raises on purpose; the message is shown to the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The request is well-formed JSON but its content cannot be served (→ 422)."""


class TooLarge(ServiceError):
    """The request body is over the configured size (→ 413)."""


class Unauthorized(ServiceError):
    """Missing or wrong API key (→ 401)."""


class Overloaded(ServiceError):
    """The server cannot take the request now; retry later (→ 429 + Retry-After)."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotReady(ServiceError):
    """A resource the request needs is not loaded (→ 503)."""


class NotFound(ServiceError):
    """The named resource does not exist (→ 404)."""


class Unavailable(ServiceError):
    """A capability this server is not configured for, e.g. generation without SDXL weights (→ 503)."""


class StorageFull(ServiceError):
    """The server's disk is full: the write was refused and nothing of it was kept (→ 507)."""


STATUS: dict[type[ServiceError], int] = {
    InvalidInput: 422,
    TooLarge: 413,
    Unauthorized: 401,
    Overloaded: 429,
    NotReady: 503,
    NotFound: 404,
    Unavailable: 503,
    StorageFull: 507,
}


def _headers(exc: ServiceError) -> dict[str, str]:
    if isinstance(exc, Overloaded):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return {}


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    status = next(code for cls, code in STATUS.items() if isinstance(exc, cls))
    return JSONResponse({"detail": exc.message}, status_code=status, headers=_headers(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, minus the offending input (which may be megabytes of base64)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def _routes_to(request: Request, method: str) -> bool:
    """Some route of the app takes `method` on this request's path."""
    scope = {**request.scope, "method": method}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTP errors as JSON; a 405's `Allow` lists the methods of every route of the
    path (Starlette lists only the first route's, e.g. GET without the DELETE beside it)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(method for method in HTTPMethod if _routes_to(request, method))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
