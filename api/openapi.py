"""OpenAPI document: request bodies parsed by ``json_body``, examples from the Starbucks
pack, the error envelope on every error status, and the two accepted credential forms."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.schemas import ErrorEnvelope

ERROR_STATUSES = {
    400: "Invalid request (VALIDATION_ERROR); details name each bad field",
    401: "Missing or invalid credentials (UNAUTHORIZED)",
    403: "The key may not call this endpoint (FORBIDDEN)",
    404: "Not found, or owned by another tenant (NOT_FOUND)",
    413: "Request body over the size limit (PAYLOAD_TOO_LARGE)",
    415: "Body is not application/json (UNSUPPORTED_MEDIA_TYPE)",
    429: "Tenant rate limit exceeded (RATE_LIMITED); see Retry-After",
    500: "Unexpected server error (INTERNAL_ERROR)",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text} for status, text in ERROR_STATUSES.items()
}

RATE_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed per tenant per minute.",
    "X-RateLimit-Remaining": "Requests left in the current sliding window.",
    "X-RateLimit-Reset": "Seconds until the oldest counted request leaves the window.",
}

# Request bodies parsed by ``json_body``: operation id -> (model, required, examples)
BODIES: dict[str, tuple[type[BaseModel], bool, dict[str, Any]]] = {}


def register_body(
    operation_id: str, model: type[BaseModel], *, required: bool = True,
    examples: dict[str, Any] | None = None,
) -> None:
    """Document the ``json_body`` model of ``operation_id`` as its request body."""
    BODIES[operation_id] = (model, required, examples or {})


RECOMMEND_EXAMPLES = {
    "starbucks": {
        "summary": "Starbucks pack: web hero banner, with the funnel",
        "value": {
            "customerId": "SBX-000042",
            "decisionFlowKey": "starbucks-decision-pipeline",
            "channel": "web",
            "placement": "hero_banner",
            "limit": 3,
            "attributes": {"device": "mobile"},
            "debug": True,
        },
    },
    "minimal": {"summary": "Only the customer (default flow)",
                "value": {"customerId": "SBX-000001"}},
    "email": {"summary": "Email channel by id, excluding an offer",
              "value": {"customerId": "SBX-000007", "channelId": "ch_email", "limit": 2,
                        "excludeOffers": ["off_info_4d"]}},
}

RECOMMEND_RESPONSE_EXAMPLE = {
    "recommendationId": "rec_0192f3a4b5c6d7e8f9a0",
    "customerId": "SBX-000042",
    "count": 1,
    "decisions": [
        {
            "rank": 1,
            "offerId": "off_bogo_5_5d",
            "offerName": "BOGO — 5 Day Easy",
            "categoryName": "Acquisition",
            "creativeId": "cr_bogo_5_5d_web",
            "channelId": "ch_web",
            "placementId": "pl_web_hero",
            "score": 0.8,
            "content": {"headline": "Buy one, get one free",
                        "ctaUrl": "https://www.starbucks.example/rewards/offers/bogo_5_5d"},
            "personalization": {"bonus_stars": 50},
            "mandatory": False,
            "interactionId": "ix_0192f3a4b5c6d7e8f9a1",
            "recommendationId": "rec_0192f3a4b5c6d7e8f9a0",
        }
    ],
    "controlGroup": False,
    "degradedScoring": False,
    "meta": {
        "decisionFlowKey": "starbucks-decision-pipeline",
        "flowVersion": 1,
        "funnel": {"candidateCount": 10, "afterQualification": 8, "afterContactPolicy": 8,
                   "finalCount": 1},
        "durationMs": 4.2,
    },
}

RESPOND_EXAMPLES = {
    "click": {
        "summary": "A click on a recommended creative",
        "value": {
            "customerId": "SBX-000042",
            "creativeId": "cr_bogo_5_5d_web",
            "channelId": "ch_web",
            "outcome": "click",
            "idempotencyKey": "click-SBX-000042-0001",
            "recommendationId": "rec_0192f3a4b5c6d7e8f9a0",
            "metadata": {"source": "homepage"},
        },
    },
    "by_rank": {
        "summary": "Resolve offer, creative and channel from the recommendation",
        "value": {"customerId": "SBX-000042", "recommendationId": "rec_0192f3a4b5c6d7e8f9a0",
                  "rank": 1, "outcome": "impression", "idempotencyKey": "imp-0001"},
    },
}

RESPOND_RESPONSE_EXAMPLE = {
    "recorded": True,
    "interactionId": "ix_0192f3a4b5c6d7e8f9b2",
    "outcome": "click",
    "classification": "positive",
    "offerId": "off_bogo_5_5d",
    "duplicate": False,
}


def custom_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    models = [(m, "validation") for m, _, _ in BODIES.values()]
    _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas.update(defs.get("$defs", {}))
    for schema_name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(schema_name, None)
    components["securitySchemes"] = {
        "TenantId": {"type": "apiKey", "in": "header", "name": "x-tenant-id"},
        "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "Bearer": {"type": "http", "scheme": "bearer",
                   "description": "Authorization: Bearer <krn_… key>"},
    }
    security = [{"TenantId": [], "ApiKey": []}, {"TenantId": [], "Bearer": []}]
    for path in schema.get("paths", {}).values():
        for op in path.values():
            op.get("responses", {}).pop("422", None)
            op["security"] = security
            for status, response in op.get("responses", {}).items():
                response["headers"] = {
                    name: {"description": text, "schema": {"type": "integer"}}
                    for name, text in RATE_HEADERS.items()
                } | ({"Retry-After": {"description": "Seconds to wait.",
                                      "schema": {"type": "integer"}}}
                     if status == "429" else {})
            body = BODIES.get(op.get("operationId", ""))
            if body is not None:
                model, required, examples = body
                content: dict[str, Any] = {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                }
                if examples:
                    content["examples"] = examples
                op["requestBody"] = {"required": required,
                                     "content": {"application/json": content}}
    app.openapi_schema = schema
    return schema
