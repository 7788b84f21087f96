"""One JSON error shape for every failed request, and the handlers that produce it.

Every error body is `{"detail": str, "errors": [{"field", "message"}]}`: `errors` names each bad field on 422
and is empty otherwise. Inputs are never echoed back, so a secret pasted in the wrong field is not reflected.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from campaigns.errors import Conflict, IdempotencyConflict, Refused, SpecError, UnknownCampaign
from contract.errors import describe
from producer.keys import KeyStoreError

log = logging.getLogger(__name__)

_LOCATION_PREFIXES = {"body", "query", "path", "header"}


class InvalidFields(Exception):
    """Raised by endpoints for a 422 that names each bad field, in the same shape as request validation."""

    def __init__(self, detail: str, errors: list[dict[str, str]]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []


def error_response(status: int, detail: str, errors: list[dict] | None = None, headers=None) -> JSONResponse:
    body = ErrorBody(detail=detail, errors=[FieldError(**e) for e in errors or []])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _without_location(error: dict) -> dict:
    """("body", "targets", 3) -> ("targets", 3); ("query", "limit") -> ("limit",)."""
    location = tuple(error.get("loc", ()))
    if len(location) > 1 and location[0] in _LOCATION_PREFIXES:
        location = location[1:]
    return {**error, "loc": location}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """`app.state.validation_details` may name what a route's request is ("invalid campaign spec")."""
        route = getattr(request.scope.get("route"), "name", "")
        detail = getattr(request.app.state, "validation_details", {}).get(route, "request validation failed")
        return error_response(422, detail, describe(_without_location(e) for e in exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(InvalidFields)
    async def invalid_fields(_: Request, exc: InvalidFields) -> JSONResponse:
        return error_response(422, exc.detail, exc.errors)

    @app.exception_handler(SpecError)
    async def invalid_spec(_: Request, exc: SpecError) -> JSONResponse:
        return error_response(422, "invalid campaign spec", exc.errors)

    @app.exception_handler(UnknownCampaign)
    async def unknown_campaign(_: Request, exc: UnknownCampaign) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, str(exc))

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return error_response(403, str(exc))

    @app.exception_handler(IdempotencyConflict)
    async def idempotency_conflict(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        return error_response(409, str(exc))

    async def backend_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("backend unavailable: %s", type(exc).__name__)
        return error_response(503, "Redis (broker or campaign store) is unavailable; retry shortly")

    for backend_error in (RedisConnectionError, RedisTimeoutError, OperationalError):
        app.add_exception_handler(backend_error, backend_down)

    @app.exception_handler(KeyStoreError)
    async def keys_unusable(_: Request, exc: KeyStoreError) -> JSONResponse:
        """The keys file went bad while the API runs (it refuses to start with one): no key can be checked."""
        log.error("%s", exc)
        return error_response(503, "the API keys file cannot be used; the API log names the problem")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Logged with its traceback (never the request headers, which hold the key), answered as JSON."""
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; the API log has the details")
