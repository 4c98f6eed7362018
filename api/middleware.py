"""The outermost ASGI layer: request id, body-size limit, response headers, last-resort 500.

Written as a plain ASGI callable (no ``BaseHTTPMiddleware``): it wraps ``send`` to add the
``x-request-id`` header and whatever headers the request collected on the way (the rate
limiter's ``X-RateLimit-*``), refuses bodies over the limit with a 413 envelope, and turns an
exception that escaped every handler into the ``INTERNAL_ERROR`` envelope. A ``POST`` to the
path of a direct route (``api.direct``) goes to that route instead of the router.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response, internal_error_response
from api.ids import request_id as new_request_id
from engine.errors import PayloadTooLargeError

log = logging.getLogger("nextbest.api")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Per-request values shared between the middleware and the handlers (``scope``)."""

    __slots__ = ("headers", "logged", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.headers: list[tuple[bytes, bytes]] = []
        self.logged = False  # an error handler logged the request's failure


def context_of(scope: dict[str, Any]) -> RequestContext:
    return scope["nextbest"]


class ServingMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, direct: Mapping[str, ASGIApp] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.direct = dict(direct or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _CLIENT_ID.match(candidate):
                    request_id = candidate
            elif name == b"content-length":
                length = value
        ctx = RequestContext(request_id or new_request_id())
        scope["nextbest"] = ctx
        rid_header = (b"x-request-id", ctx.request_id.encode())
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), rid_header, *ctx.headers]
            await send(message)

        limit = self.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            exc = PayloadTooLargeError(
                f"request body is larger than {limit} bytes", field="body"
            )
            await error_response(exc, ctx.request_id)(scope, receive, send_with_headers)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"request body is larger than {limit} bytes")
            return message

        target = self.app
        if scope["method"] == "POST" and not scope.get("root_path"):
            target = self.direct.get(scope["path"], target)
        try:
            await target(scope, limited_receive, send_with_headers)
        except Exception:
            if not ctx.logged:
                log.exception("unhandled error in request %s", ctx.request_id)
            if not started:
                await internal_error_response(ctx.request_id)(scope, receive, send_with_headers)
