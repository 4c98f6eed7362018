"""The dependency of the catalog routes: ``Call[dict]``, authenticated and rate limited
like every route, with the body read as one JSON object (or YAML for catalog import).

Catalog bodies are validated by the catalog document models in the store, so here the body
is only parsed: with orjson, which refuses what cannot be stored back as JSON (``NaN``,
infinities, lone surrogates) instead of letting it fail later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request

from api.deps import Call, authorize
from api.middleware import context_of
from engine.catalog.io import from_yaml
from engine.errors import UnsupportedMediaTypeError, ValidationError

JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


async def read_body(request: Request, *, optional: bool, yaml: bool) -> Any:
    content_type = request.headers.get("content-type")
    media = content_type.split(";", 1)[0].strip().lower() if content_type is not None else None
    is_yaml = yaml and media in YAML_TYPES
    if (
        media is not None
        and not is_yaml
        and media not in JSON_TYPES
        and not media.endswith("+json")
    ):
        accepted = "application/json" + (" or application/yaml" if yaml else "")
        raise UnsupportedMediaTypeError(
            f"Content-Type must be {accepted}, got {media or 'nothing'!r}", field="Content-Type"
        )
    raw = await request.body()
    if not raw.strip():
        if optional:
            return {}
        raise ValidationError("a JSON request body is required", field="body")
    if is_yaml:
        return from_yaml(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"malformed JSON: {exc}", field="body") from None


def catalog_call(
    *, body: bool = False, optional: bool = False, yaml: bool = False, obj: bool = True
) -> Callable[[Request], Awaitable[Call[Any]]]:
    """Auth + rate limit, then (``body=True``) the body parsed; ``obj`` requires an object."""

    async def dependency(request: Request) -> Call[Any]:
        principal = authorize(request)
        data = None
        if body:
            data = await read_body(request, optional=optional, yaml=yaml)
            if obj and not isinstance(data, dict):
                raise ValidationError("the request body must be a JSON object", field="body")
        return Call(
            principal,
            data,
            request.app.state.services,
            context_of(request.scope).request_id,
            request.headers,
        )

    dependency.__name__ = f"catalog_call_{'body' if body else 'none'}"
    return dependency
