"""Domain exceptions raised by services, the one table that maps them to HTTP, and the one
error body.

Native API: `{"detail": "<one human message>"}`, plus `"errors": [{"loc", "msg", "type"}]` on
validation failures (FastAPI's list, one entry per offending field). Under `/v1/` (the
OpenAI-compatible API): OpenAI's `{"error": {"message", "type", "param", "code"}}`, and a
request that cannot be served is a 400 there, as OpenAI answers it, where the native API says 422.
"""

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


OPENAI_PREFIX = "/v1/"


class ServiceError(Exception):
    """Base of the errors a service raises on purpose; the message is shown to the client.
    `param` (the request field at fault) and `code` (a machine-readable reason) are shown by
    the OpenAI-shaped errors of `/v1/`."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidInput(ServiceError):
    """The request is well-formed JSON but its content cannot be served (→ 422)."""


class TooLarge(ServiceError):
    """The request body is over the configured size (→ 413)."""


class Unauthorized(ServiceError):
    """Missing or wrong API key (→ 401)."""


class Overloaded(ServiceError):
    """The server cannot take the request now; retry later (→ 429 + Retry-After)."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after = retry_after


class NotReady(ServiceError):
    """A resource the request needs is not loaded (→ 503)."""


class NotFound(ServiceError):
    """The named resource does not exist (→ 404)."""


class Unavailable(ServiceError):
    """A capability this server is not configured for, e.g. generation without SDXL weights (→ 503)."""


class StorageFull(ServiceError):
    """The server's disk is full: the write was refused and nothing of it was kept (→ 507)."""


class ClientGone(ServiceError):
    """The client hung up before its answer began (→ 499, as nginx logs it; sent to nobody)."""


STATUS: dict[type[ServiceError], int] = {
    InvalidInput: 422,
    TooLarge: 413,
    Unauthorized: 401,
    Overloaded: 429,
    NotReady: 503,
    NotFound: 404,
    Unavailable: 503,
    StorageFull: 507,
    ClientGone: 499,
}


# OpenAI's error `type` and default `code` by status (`/v1/` only).
OPENAI_TYPES = {429: "requests"}
OPENAI_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


def error_response(
    path: str,
    status: int,
    message: str,
    *,
    errors: list[dict] | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error body for a request to `path` (see the module docstring)."""
    if path.startswith(OPENAI_PREFIX):
        status = 400 if status == 422 else status
        kind = OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        error = {"message": message, "type": kind, "param": param, "code": code or OPENAI_CODES.get(status)}
        return JSONResponse({"error": error}, status_code=status, headers=headers)
    body: dict = {"detail": message}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _headers(exc: ServiceError) -> dict[str, str]:
    if isinstance(exc, Overloaded):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return {}


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    status = next(code for cls, code in STATUS.items() if isinstance(exc, cls))
    return error_response(request.url.path, status, exc.message, param=exc.param, code=exc.code, headers=_headers(exc))


def _where(loc: list) -> str:
    """A field path as the services name fields: ["body", "pairs", 0, "first"] → "pairs[0].first"."""
    parts = list(loc[1:] if len(loc) > 1 and loc[0] == "body" else loc) or ["body"]
    if isinstance(parts[0], int):  # the offset of a JSON syntax error
        parts.insert(0, "body")
    text = str(parts[0])
    for part in parts[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _message(errors: list[dict]) -> str:
    """One line naming each offending field (the first few) and what is wrong with it."""
    shown = [f"{_where(err['loc'])}: {err['msg'].removeprefix('Value error, ')}" for err in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(shown) + more


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 as `detail` (one message) + `errors` (FastAPI's list, minus the offending
    input, which may be megabytes of base64)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    param = _where(errors[0]["loc"]) if errors else None
    return error_response(request.url.path, 422, _message(errors), errors=errors, param=param)


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
    return error_response(request.url.path, exc.status_code, str(exc.detail), headers=headers)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A fault of the server (logged with its traceback by the server): the same body shape."""
    return error_response(request.url.path, 500, "internal server error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
