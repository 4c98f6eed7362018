"""Errors as HTTP: one envelope for every failure, whoever raised it.

``{"error": {"code", "message", "status", "details"?, "recommendationId"}}`` where
``recommendationId`` is the correlation id also sent as the ``x-request-id`` header (the
spec's name for it, §3). Domain errors (``engine.errors``), request validation, routing
misses and unexpected exceptions all render here; internals never reach the client.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from engine.errors import NextbestError, RateLimitedError

log = logging.getLogger("nextbest.api")


_HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def request_id_of(scope: dict[str, Any]) -> str:
    ctx = scope.get("nextbest")
    return ctx.request_id if ctx is not None else ""


def envelope(body: dict[str, Any], request_id: str) -> bytes:
    return orjson.dumps({"error": {**body, "recommendationId": request_id}})


def error_response(
    exc: NextbestError, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    headers = dict(headers or {})
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(max(1, int(-(-exc.retry_after // 1))))
    return Response(
        envelope(exc.to_dict(), request_id),
        status_code=exc.http_status,
        media_type="application/json",
        headers=headers,
    )


def internal_error_response(request_id: str) -> Response:
    body = {
        "code": "INTERNAL_ERROR",
        "message": f"internal server error; quote request id {request_id} when reporting it",
        "status": 500,
    }
    return Response(envelope(body, request_id), status_code=500, media_type="application/json")


def _field(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        where = parts.pop(0)
        if not parts:
            return "body" if where == "body" else where
    if not parts:
        return "body"
    return ".".join(to_camel(p) if isinstance(p, str) else str(p) for p in parts)


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    details = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "invalid JSON")
            details.append({"field": "body", "message": f"malformed JSON: {reason}"})
            continue
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        details.append({"field": _field(loc), "message": msg})
    return details or [{"field": "body", "message": "invalid request"}]


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NextbestError)
    if exc.http_status >= 500:
        log.error("request %s failed: %s", request_id_of(request.scope), exc.message)
        return internal_error_response(request_id_of(request.scope))
    return error_response(exc, request_id_of(request.scope))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(list(exc.errors()))
    first = details[0]
    message = first["message"] if first["field"] == "body" else (
        f"{first['field']}: {first['message']}"
    )
    body = {"code": "VALIDATION_ERROR", "message": message, "status": 400, "details": details}
    return Response(envelope(body, request_id_of(request.scope)), status_code=400,
                    media_type="application/json")


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
    if status == 404:
        message = f"no route {request.method} {request.url.path}; see /docs for the API"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    body = {"code": code, "message": message, "status": status}
    return Response(envelope(body, request_id_of(request.scope)), status_code=status,
                    media_type="application/json", headers=dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    """Anything else: logged here, answered with the envelope (no internals)."""
    request_id = request_id_of(request.scope)
    log.error("unhandled error in request %s", request_id, exc_info=exc)
    context = request.scope.get("nextbest")
    if context is not None:
        context.logged = True
    return internal_error_response(request_id)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_exception_handler(NextbestError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)

