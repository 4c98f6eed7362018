"""Request and response bodies of the serving API (camelCase, as on the wire).

Request models are strict (no ``"5"`` for an integer) and forbid unknown fields, so a typo
is a 400 naming the field instead of a silently ignored option. Response models document
what the handlers emit; handlers serialize plain dicts of the same shape with orjson.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Field(min_length=1, max_length=255)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# -- recommend -----------------------------------------------------------------------------
class PlacementSlot(Body):
    placementId: str = Id
    limit: int | None = Field(default=None, ge=1, le=50)


class RecommendRequest(Body):
    customerId: str = Field(min_length=1, max_length=255,
                            description="The customer to decide for (unknown ids are fine).")
    decisionFlowKey: str | None = Field(default=None, min_length=1, max_length=255,
                                        description="Flow to run; else routed/default flow.")
    blueprintKey: str | None = Field(default=None, min_length=1, max_length=255,
                                     description="Legacy alias of decisionFlowKey.")
    decisionFlowId: str | None = Field(default=None, min_length=1, max_length=255,
                                       description="Flow id instead of key (Gen-1).")
    limit: int | None = Field(default=None, ge=1, le=50, description="Max decisions (5).")
    maxOffers: int | None = Field(default=None, ge=1, le=50, description="Alias of limit.")
    channel: str | None = Field(default=None, min_length=1, max_length=255,
                                description="Channel type (web, email, push, ...).")
    channelId: str | None = Field(default=None, min_length=1, max_length=255)
    placement: str | None = Field(default=None, min_length=1, max_length=255,
                                  description="Placement id or slot type (hero_banner, ...).")
    placements: list[PlacementSlot] | None = Field(default=None, min_length=1, max_length=20)
    deduplicate: bool = False
    attributes: dict[str, Any] | None = Field(
        default=None, description="Request-time attributes, visible as attributes.* in rules."
    )
    segments: list[str] | None = Field(default=None, max_length=100)
    excludeOffers: list[str] | None = Field(default=None, max_length=1000)
    excludeCreatives: list[str] | None = Field(default=None, max_length=1000)
    context: dict[str, Any] | None = None
    sessionId: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    locale: str | None = Field(default=None, max_length=35)
    currency: str | None = Field(default=None, max_length=8)
    debug: bool | None = Field(default=None, description="Funnel in meta + a stored trace.")
    trace: bool | None = Field(default=None, description="Alias of debug.")


class Decision(BaseModel):
    rank: int
    offerId: str
    offerName: str
    categoryName: str | None
    creativeId: str | None
    channelId: str | None
    placementId: str | None
    score: float
    content: dict[str, Any]
    personalization: dict[str, Any]
    mandatory: bool
    interactionId: str
    recommendationId: str


class PlacementResult(BaseModel):
    placementId: str
    count: int
    decisions: list[Decision]


class RecommendMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    decisionFlowKey: str
    flowVersion: int | str
    funnel: dict[str, int]
    durationMs: float


class RecommendResponse(BaseModel):
    recommendationId: str
    customerId: str
    count: int
    decisions: list[Decision]
    placementResults: list[PlacementResult] | None = None
    controlGroup: bool
    degradedScoring: bool
    meta: RecommendMeta | None = None


# -- respond -------------------------------------------------------------------------------
class RespondRequest(Body):
    customerId: str = Id
    outcome: str | None = Field(default=None, min_length=1, max_length=64,
                                description="A registered outcome-type key.")
    interactionType: str | None = Field(default=None, min_length=1, max_length=64,
                                        description="Alias of outcome (Gen-1).")
    outcomeType: str | None = Field(default=None, min_length=1, max_length=64,
                                    description="Alias of outcome.")
    idempotencyKey: str | None = Field(default=None, min_length=1, max_length=255,
                                       description="Or the Idempotency-Key header.")
    creativeId: str | None = Field(default=None, min_length=1, max_length=255)
    treatmentId: str | None = Field(default=None, min_length=1, max_length=255,
                                    description="Deprecated alias of creativeId.")
    channelId: str | None = Field(default=None, min_length=1, max_length=255)
    offerId: str | None = Field(default=None, min_length=1, max_length=255)
    placementId: str | None = Field(default=None, min_length=1, max_length=255)
    recommendationId: str | None = Field(default=None, min_length=1, max_length=255)
    rank: int | None = Field(default=None, ge=1, le=1000)
    interactionId: str | None = Field(default=None, min_length=1, max_length=255)
    direction: Literal["inbound", "outbound"] | None = None
    metadata: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    outcomeDetails: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None
    timestamp: datetime | None = None
    conversionValue: float | None = Field(default=None, allow_inf_nan=False)


class RespondResponse(BaseModel):
    recorded: bool
    interactionId: str
    outcome: str
    classification: str | None
    offerId: str | None
    duplicate: bool


# -- api keys ------------------------------------------------------------------------------
class ApiKeyCreate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    expiresAt: datetime | None = None
    scopes: list[str] | None = Field(default=None, max_length=16)


class ApiKeyRevoke(Body):
    reason: str | None = Field(default=None, max_length=1000)


class ApiKeyInfo(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    expiresAt: str | None
    lastUsedAt: str | None
    createdAt: str


class ApiKeyCreated(BaseModel):
    id: str
    name: str
    key: str
    prefix: str
    scopes: list[str]
    expiresAt: str | None
    createdAt: str
    warning: str


class ApiKeyList(BaseModel):
    data: list[ApiKeyInfo]
    total: int


# -- traces --------------------------------------------------------------------------------
class DecisionTrace(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customerId: str
    decisionFlowKey: str | None = None


class DecisionTraceList(BaseModel):
    traces: list[DecisionTrace]
    total: int
    limit: int
    offset: int


# -- errors --------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    field: str | None = None
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    status: int
    details: list[ErrorDetail] | None = None
    recommendationId: str = Field(description="Correlation id (= the x-request-id header).")


class ErrorEnvelope(BaseModel):
    error: ErrorBody
