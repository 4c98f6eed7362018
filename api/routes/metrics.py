"""``/api/v1/behavioral-metrics``: metric definitions (spec §14.1) and their live values.

Definitions are catalog documents: validated by compiling them (an unknown filter field is a
400 naming ``filterConditions…field``), versioned, soft-deleted; at most 20 per tenant.
``GET /behavioral-metrics/values?customerId=`` shows one customer's values exactly as the
recommend path computes them at this moment, from the in-memory history.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.catalog_entities import BEHAVIORAL_METRICS
from api.deps import Call, JSONBytes, authorized
from api.openapi import ERROR_RESPONSES, register_body
from api.routes.catalog import add_collection_routes, add_item_routes
from api.schemas import DocumentBody, MetricValues

router = APIRouter(prefix="/api/v1", tags=["Behavioral metrics"])

Authorized = Annotated[Call[None], Depends(authorized())]
DocumentCall = Annotated[Call[DocumentBody], Depends(authorized(DocumentBody))]

add_collection_routes(router, BEHAVIORAL_METRICS)


@router.put(
    "/behavioral-metrics",
    operation_id="updateBehavioralMetricFromBody",
    summary="Update the metric named by the body's id (changed fields only)",
    response_class=JSONBytes,
    responses={200: {"model": BEHAVIORAL_METRICS.record}, **BEHAVIORAL_METRICS.write_errors},
)
async def update_behavioral_metric_by_body(call: DocumentCall) -> JSONBytes:
    return JSONBytes(await call.services.metrics.update(call.tenant_id, None, call.body.root))


register_body("updateBehavioralMetricFromBody", DocumentBody,
              examples=BEHAVIORAL_METRICS.update_examples)


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


# after /values, which must win over /behavioral-metrics/{metric_id}
add_item_routes(router, BEHAVIORAL_METRICS)
