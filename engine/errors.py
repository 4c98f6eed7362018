"""One error tree for the whole product.

Every error carries a stable ``code`` and an ``http_status``; the API maps the base class to
the JSON envelope in one place. ``details`` lists the offending fields as
``{"field": ..., "message": ...}`` so a client can point at what to fix.
"""

from __future__ import annotations

from typing import Any


class NextbestError(Exception):
    code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if details is None and field is not None:
            details = [{"field": field, "message": message}]
        if field is None and details:
            field = details[0].get("field")
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "status": self.http_status,
        }
        if self.details:
            body["details"] = self.details
        return body


class ValidationError(NextbestError):
    code = "VALIDATION_ERROR"
    http_status = 400


class UnauthorizedError(NextbestError):
    code = "UNAUTHORIZED"
    http_status = 401


class ForbiddenError(NextbestError):
    code = "FORBIDDEN"
    http_status = 403


class NotFoundError(NextbestError):
    code = "NOT_FOUND"
    http_status = 404


class ConflictError(NextbestError):
    code = "CONFLICT"
    http_status = 409


class PayloadTooLargeError(NextbestError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class UnsupportedMediaTypeError(NextbestError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class RateLimitedError(NextbestError):
    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InternalError(NextbestError):
    code = "INTERNAL_ERROR"
    http_status = 500


__all__ = [
    "ConflictError",
    "ForbiddenError",
    "InternalError",
    "NextbestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "ValidationError",
]
