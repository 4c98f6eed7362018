"""``/api/v1/behavioral-metrics``: metric definitions (spec §14.1) and their live values.

Definitions are catalog documents: validated by compiling them (an unknown filter field is a
400 naming ``filterConditions…field``), versioned, soft-deleted; at most 20 per tenant.
``GET /behavioral-metrics/values?customerId=`` shows one customer's values exactly as the
recommend path computes them at this moment, from the in-memory history.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from api.deps import Call, JSONBytes, authorized
from api.openapi import ERROR_RESPONSES, register_body
from api.schemas import (
    BehavioralMetricList,
    BehavioralMetricOut,
    DocumentBody,
    ErrorEnvelope,
    MetricValues,
)
from engine.catalog.documents import BehavioralMetric

router = APIRouter(prefix="/api/v1", tags=["Behavioral metrics"])

CLICKS_7D = {
    "name": "clicks_7d", "description": "Clicks in the last 7 days",
    "aggregateFunction": "count", "sourceField": "click", "windowDays": 7,
    "computeMode": "realtime",
}
register_body("createBehavioralMetric", BehavioralMetric, examples={
    "clicks": {"summary": "A realtime count of clicks over 7 days", "value": CLICKS_7D},
    "dismissals": {"summary": "Dismissals of one offer in 30 days", "value": {
        "name": "bogo_dismissals_30d", "aggregateFunction": "count", "sourceField": "dismiss",
        "windowDays": 30, "computeMode": "realtime",
        "filterConditions": {"field": "offerId", "operator": "eq", "value": "off_bogo_5_5d"},
    }},
})
for operation in ("updateBehavioralMetric", "patchBehavioralMetric",
                  "updateBehavioralMetricFromBody"):
    register_body(operation, DocumentBody, examples={
        "pause": {"summary": "Pause a metric", "value": {"status": "paused"}},
    })

Authorized = Annotated[Call[None], Depends(authorized())]
DocumentCall = Annotated[Call[DocumentBody], Depends(authorized(DocumentBody))]
MetricId = Annotated[str, Path(max_length=255, description="The metric id (met_…).")]
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    409: {"model": ErrorEnvelope, "description": "A metric of that name exists (CONFLICT)"},
}


@router.get(
    "/behavioral-metrics",
    operation_id="listBehavioralMetrics",
    summary="Metric definitions, newest first, each with its stored value count",
    response_class=JSONBytes,
    responses={200: {"model": BehavioralMetricList}, **ERROR_RESPONSES},
)
async def list_behavioral_metrics(
    call: Authorized,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=255)] = None,
    includeDeleted: bool = False,  # noqa: N803
) -> JSONBytes:
    return JSONBytes(await call.services.metrics.list(call.tenant_id, limit, cursor,
                                                      includeDeleted))


@router.post(
    "/behavioral-metrics",
    operation_id="createBehavioralMetric",
    status_code=201,
    summary="Create a metric definition (at most 20 per tenant)",
    response_class=JSONBytes,
    responses={201: {"model": BehavioralMetricOut}, **WRITE_RESPONSES},
)
async def create_behavioral_metric(call: DocumentCall) -> JSONBytes:
    return JSONBytes(await call.services.metrics.create(call.tenant_id, call.body.root),
                     status_code=201)


@router.put(
    "/behavioral-metrics",
    operation_id="updateBehavioralMetricFromBody",
    summary="Update the metric named by the body's id (changed fields only)",
    response_class=JSONBytes,
    responses={200: {"model": BehavioralMetricOut}, **WRITE_RESPONSES},
)
async def update_behavioral_metric_by_body(call: DocumentCall) -> JSONBytes:
    return JSONBytes(await call.services.metrics.update(call.tenant_id, None, call.body.root))


@router.get(
    "/behavioral-metrics/values",
    operation_id="getBehavioralMetricValues",
    summary="One customer's metric values as decisions read them now (realtime)",
    response_class=JSONBytes,
    responses={200: {"model": MetricValues}, **ERROR_RESPONSES},
)
async def get_behavioral_metric_values(
    call: Authorized,
    customerId: Annotated[str | None, Query(max_length=255)] = None,  # noqa: N803
) -> JSONBytes:
    return JSONBytes(await call.services.metrics.values(call.tenant_id, customerId))


@router.get(
    "/behavioral-metrics/{metric_id}",
    operation_id="getBehavioralMetric",
    summary="One metric definition",
    response_class=JSONBytes,
    responses={200: {"model": BehavioralMetricOut}, **ERROR_RESPONSES},
)
async def get_behavioral_metric(call: Authorized, metric_id: MetricId) -> JSONBytes:
    return JSONBytes(await call.services.metrics.get(call.tenant_id, metric_id))


@router.put(
    "/behavioral-metrics/{metric_id}",
    operation_id="updateBehavioralMetric",
    summary="Update a metric definition (the fields sent replace the stored ones)",
    response_class=JSONBytes,
    responses={200: {"model": BehavioralMetricOut}, **WRITE_RESPONSES},
)
async def update_behavioral_metric(call: DocumentCall, metric_id: MetricId) -> JSONBytes:
    return JSONBytes(await call.services.metrics.update(call.tenant_id, metric_id,
                                                        call.body.root))


@router.patch(
    "/behavioral-metrics/{metric_id}",
    operation_id="patchBehavioralMetric",
    summary="Change some fields of a metric definition",
    response_class=JSONBytes,
    responses={200: {"model": BehavioralMetricOut}, **WRITE_RESPONSES},
)
async def patch_behavioral_metric(call: DocumentCall, metric_id: MetricId) -> JSONBytes:
    return JSONBytes(await call.services.metrics.update(call.tenant_id, metric_id,
                                                        call.body.root))


@router.delete(
    "/behavioral-metrics/{metric_id}",
    operation_id="deleteBehavioralMetric",
    status_code=204,
    summary="Delete a metric definition (soft delete)",
    response_class=Response,
    responses=ERROR_RESPONSES,
)
async def delete_behavioral_metric(call: Authorized, metric_id: MetricId) -> Response:
    await call.services.metrics.delete(call.tenant_id, metric_id)
    return Response(status_code=204)
