"""``/api/v1/decision-traces``: the traces that ``debug: true`` recommendations stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import Call, JSONBytes, authorized
from api.openapi import ERROR_RESPONSES
from api.schemas import DecisionTrace, DecisionTraceList

router = APIRouter(prefix="/api/v1", tags=["Decision traces"])
Authorized = Annotated[Call[None], Depends(authorized())]


@router.get(
    "/decision-traces/{trace_id}",
    operation_id="getDecisionTrace",
    summary="One decision trace (its id is the recommendationId)",
    response_class=JSONBytes,
    responses={200: {"model": DecisionTrace}, **ERROR_RESPONSES},
)
async def get_decision_trace(
    call: Authorized, trace_id: Annotated[str, Path(max_length=255)]
) -> JSONBytes:
    return JSONBytes(await call.services.traces.get(call.tenant_id, trace_id))


@router.get(
    "/decision-traces",
    operation_id="listDecisionTraces",
    summary="Decision traces, newest first",
    response_class=JSONBytes,
    responses={200: {"model": DecisionTraceList}, **ERROR_RESPONSES},
)
async def list_decision_traces(
    call: Authorized,
    customerId: Annotated[str | None, Query(max_length=255)] = None,  # noqa: N803
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JSONBytes:
    return JSONBytes(await call.services.traces.list(call.tenant_id, customerId, limit, offset))
