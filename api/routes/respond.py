"""``POST /api/v1/respond``: record an interaction (exactly once per idempotency key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import Call, JSONBytes, authorized
from api.direct import DirectRoute
from api.openapi import (
    ERROR_RESPONSES,
    RESPOND_EXAMPLES,
    RESPOND_RESPONSE_EXAMPLE,
    register_body,
)
from api.schemas import RespondRequest, RespondResponse

router = APIRouter(prefix="/api/v1", tags=["Respond"])
register_body("respond", RespondRequest, examples=RESPOND_EXAMPLES)
respond_call = authorized(RespondRequest)
RespondCall = Annotated[Call[RespondRequest], Depends(respond_call)]
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Alternative to the body's idempotencyKey.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


@router.post(
    "/respond",
    operation_id="respond",
    status_code=201,
    summary="Record a customer's response to a recommendation",
    response_class=JSONBytes,
    responses={
        201: {"model": RespondResponse, "description": "Recorded (durable).",
              "content": {"application/json": {"example": RESPOND_RESPONSE_EXAMPLE}}},
        200: {"model": RespondResponse,
              "description": "Duplicate idempotency key: the original result, not re-recorded."},
        **ERROR_RESPONSES,
    },
    openapi_extra={"parameters": [IDEMPOTENCY_HEADER]},
)
async def respond(call: RespondCall) -> JSONBytes:
    status, result = await call.services.responder.record(
        call.tenant_id, call.body, call.headers.get("idempotency-key")
    )
    return JSONBytes(result, status_code=status)


DIRECT = DirectRoute("/api/v1/respond", respond_call, respond)
