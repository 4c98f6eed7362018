"""The one error a formula can raise: :class:`FormulaError`."""

from __future__ import annotations

from typing import Any

from engine.errors import ValidationError


class FormulaError(ValidationError):
    """A formula that cannot be compiled, with the 1-based ``column`` of the problem.

    It is a :class:`~engine.errors.ValidationError` (``VALIDATION_ERROR``, HTTP 400), so the API
    maps it without special cases; ``details`` carries ``{"field": "formula", "message",
    "column"}`` for a client to point at the offending character.
    """

    def __init__(self, message: str, *, column: int | None = None) -> None:
        detail: dict[str, Any] = {"field": "formula", "message": message}
        if column is not None:
            detail["column"] = column
        super().__init__(message, field="formula", details=[detail])
        self.column = column


__all__ = ["FormulaError"]
