"""Request and response bodies of the serving API (camelCase, as on the wire).

Request models are strict (no ``"5"`` for an integer) and forbid unknown fields, so a typo
is a 400 naming the field instead of a silently ignored option. Response models document
what the handlers emit; handlers serialize plain dicts of the same shape with orjson.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

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


class ExperimentAssignment(BaseModel):
    key: str = Field(description="The active experiment's key.")
    variant: str = Field(description="The customer's variant, or __holdout__.")


class RecommendResponse(BaseModel):
    recommendationId: str
    customerId: str
    count: int
    decisions: list[Decision]
    placementResults: list[PlacementResult] | None = None
    controlGroup: bool = Field(description="A holdout customer: priority-only fallback.")
    degradedScoring: bool
    experiment: ExperimentAssignment | None = Field(
        default=None, description="Present while the tenant has an active experiment."
    )
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


# -- catalog documents (behavioural metrics, experiments) ---------------------------------
class DocumentBody(RootModel[dict[str, Any]]):
    """A catalog document as JSON; the store validates it against the entity's model."""


class CatalogDocument(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    version: int
    createdAt: str | None = None
    updatedAt: str | None = None
    deletedAt: str | None = None


class Pagination(BaseModel):
    total: int
    limit: int
    hasMore: bool
    nextCursor: str | None


class MetricCount(BaseModel):
    values: int = Field(description="Rows of the metric in the latest batch refresh.")


class BehavioralMetricOut(CatalogDocument):
    name: str
    count_: MetricCount | None = Field(default=None, alias="_count")


class BehavioralMetricList(BaseModel):
    data: list[BehavioralMetricOut]
    total: int
    hasMore: bool
    pagination: Pagination


class MetricValue(BaseModel):
    metric: str
    groupKey: str | None = Field(description="offerId=off_x|channelId=ch_y, or null.")
    value: float | None


class MetricValues(BaseModel):
    customerId: str
    asOf: str
    values: list[MetricValue]
    skipped: dict[str, str] = Field(description="Active definitions that do not compile.")


class ExperimentOut(CatalogDocument):
    key: str
    name: str
    status: str


class ExperimentList(BaseModel):
    data: list[ExperimentOut]
    pagination: Pagination


class ExperimentResultsOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    experimentKey: str
    alpha: float
    arms: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]


class PowerRequest(Body):
    baselineConversionRate: float = Field(description="Control conversion rate, 0.001-1.")
    minimumDetectableEffect: float = Field(description="Smallest effect to detect, 0.001-1.")
    mdeType: Literal["absolute", "relative"] = "absolute"
    significanceLevel: float = Field(default=0.05, description="Alpha, 0.01-0.20.")
    power: float = Field(default=0.8, description="0.5-0.99.")
    trafficSplit: float = Field(default=0.5, description="Treatment share, 0.1-0.9.")
    dailyTraffic: float | None = Field(
        default=None, description="Customers per day; default: the last 14 days' average "
        "daily recommendations."
    )


class PowerResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    requiredSampleSize: int
    perVariant: dict[str, int]
    estimatedDuration: dict[str, Any]
    sensitivityTable: list[dict[str, Any]]


# -- interactions --------------------------------------------------------------------------
class InteractionSummaryList(BaseModel):
    data: list[dict[str, Any]]
    total: int
    limit: int


class InteractionHistoryPage(BaseModel):
    data: list[dict[str, Any]]
    pagination: Pagination


# -- tenant settings -----------------------------------------------------------------------
class MlWorker(Body):
    url: str | None = Field(default=None, max_length=2048)
    enabled: bool | None = None


class TenantSettings(Body):
    """The documented tenant settings (spec §19.2); a PUT deep-merges the given keys."""

    decisionTraceEnabled: bool | None = None
    decisionTraceSampleRate: float | None = Field(default=None, ge=0, le=1)
    defaultArbitrationProfileId: str | None = Field(default=None, max_length=255)
    defaultRankingProfileId: str | None = Field(default=None, max_length=255)
    holdoutPercentage: float | None = Field(
        default=None, ge=0, le=100,
        description="Share of customers (deterministic) given the priority-only fallback.",
    )
    enableExperiments: bool | None = None
    enableBudgets: bool | None = None
    enableGuardrails: bool | None = None
    enableJourneys: bool | None = None
    enableContentManagement: bool | None = None
    enableBehavioralMetrics: bool | None = None
    maxOffersPerDecision: int | None = Field(default=None, ge=1, le=100)
    defaultChannelTimeout: int | None = Field(default=None, ge=100, le=60000)
    retentionDays: int | None = Field(default=None, ge=1, le=3650)
    approvalWorkflowEnabled: bool | None = None
    requirePublishApproval: bool | None = None
    mfaRequired: bool | None = None
    theme: str | None = Field(default=None, max_length=64)
    locale: str | None = Field(default=None, max_length=35)
    timezone: str | None = Field(default=None, max_length=64)
    mlWorker: MlWorker | None = None
    aiAnalyzerSettings: dict[str, Any] | None = None


class TenantSettingsOut(BaseModel):
    model_config = ConfigDict(extra="allow")


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
