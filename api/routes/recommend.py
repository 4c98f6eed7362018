"""``POST /api/v1/recommend``: ranked, personalized offers for one customer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import Call, JSONBytes, authorized
from api.direct import DirectRoute
from api.openapi import (
    ERROR_RESPONSES,
    RECOMMEND_EXAMPLES,
    RECOMMEND_RESPONSE_EXAMPLE,
    register_body,
)
from api.schemas import RecommendRequest, RecommendResponse

router = APIRouter(prefix="/api/v1", tags=["Recommend"])
register_body("recommend", RecommendRequest, examples=RECOMMEND_EXAMPLES)
recommend_call = authorized(RecommendRequest)
RecommendCall = Annotated[Call[RecommendRequest], Depends(recommend_call)]


@router.post(
    "/recommend",
    operation_id="recommend",
    summary="Run a decision flow for a customer and return ranked offers",
    response_class=JSONBytes,
    responses={
        200: {"model": RecommendResponse,
              "content": {"application/json": {"example": RECOMMEND_RESPONSE_EXAMPLE}}},
        **ERROR_RESPONSES,
    },
)
async def recommend(call: RecommendCall) -> JSONBytes:
    return JSONBytes(await call.services.recommender.recommend(
        call.tenant_id, call.body, call.request_id
    ))


DIRECT = DirectRoute("/api/v1/recommend", recommend_call, recommend)
