"""``/api/v1/interaction-summaries`` (spec §14.3) and ``/api/v1/interaction-history`` (§14.4):
reads of the tenant's durable interaction log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import Call, JSONBytes, authorized
from api.openapi import ERROR_RESPONSES
from api.schemas import InteractionHistoryPage, InteractionSummaryList

router = APIRouter(prefix="/api/v1", tags=["Interactions"])
Authorized = Annotated[Call[None], Depends(authorized())]
Text = Annotated[str | None, Query(max_length=255)]


@router.get(
    "/interaction-summaries",
    operation_id="listInteractionSummaries",
    summary="A customer's counters per offer (or creative, channel, ...) and period",
    response_class=JSONBytes,
    responses={200: {"model": InteractionSummaryList}, **ERROR_RESPONSES},
)
async def list_interaction_summaries(
    call: Authorized,
    customerId: Text = None,  # noqa: N803
    periodType: Annotated[str | None, Query(  # noqa: N803
        max_length=16, description="daily, weekly, monthly or alltime")] = None,
    offerId: Text = None,  # noqa: N803
    channelId: Text = None,  # noqa: N803
    level: Annotated[str, Query(
        max_length=16, description="offer, creative, channel, category or customer")] = "offer",
    limit: Annotated[int, Query(description="1-200")] = 200,
) -> JSONBytes:
    return JSONBytes(await call.services.interactions.summaries(
        call.tenant_id, customerId, period_type=periodType, offer_id=offerId,
        channel_id=channelId, level=level, limit=limit,
    ))


@router.get(
    "/interaction-history",
    operation_id="listInteractionHistory",
    summary="The tenant's interactions, newest first (cursor = last id of the page)",
    response_class=JSONBytes,
    responses={200: {"model": InteractionHistoryPage}, **ERROR_RESPONSES},
)
async def list_interaction_history(
    call: Authorized,
    customerId: Text = None,  # noqa: N803
    offerId: Text = None,  # noqa: N803
    actionId: Text = None,  # noqa: N803
    creativeId: Text = None,  # noqa: N803
    treatmentId: Text = None,  # noqa: N803
    type: Annotated[str | None, Query(
        max_length=64,
        description="recommendation, impression, response or an outcome key")] = None,
    limit: Annotated[int, Query(description="1-100")] = 25,
    cursor: Text = None,
) -> JSONBytes:
    return JSONBytes(await call.services.interactions.history(
        call.tenant_id, customer_id=customerId, offer_id=offerId, action_id=actionId,
        creative_id=creativeId, treatment_id=treatmentId, type=type, limit=limit,
        cursor=cursor,
    ))
