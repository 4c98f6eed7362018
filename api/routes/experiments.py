"""``/api/v1/experiments`` (spec §15) and ``/api/v1/tenant-settings`` (§19.2, whose
``holdoutPercentage`` is the tenant-level holdout of §15.4).

An *active* experiment assigns every recommend's customer to a variant
(``engine.experiments.assign``); the variant's exposures and conversions in the log are
what ``/results`` analyses. Variants must split 100 % of the traffic (400), keys are unique
per tenant (a duplicate is a 400, spec §15.1) and one experiment is active at a time (409).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from api.catalog_entities import EXPERIMENTS
from api.deps import Call, JSONBytes, authorized
from api.openapi import ERROR_RESPONSES, register_body
from api.routes.catalog import add_collection_routes, add_item_routes
from api.schemas import (
    ExperimentResultsOut,
    PowerRequest,
    PowerResult,
    TenantSettings,
    TenantSettingsOut,
)

router = APIRouter(prefix="/api/v1", tags=["Experiments"])

register_body("experimentPowerCalculator", PowerRequest, examples={
    "relative": {"summary": "+10 % on a 5 % conversion rate", "value": {
        "baselineConversionRate": 0.05, "minimumDetectableEffect": 0.1,
        "mdeType": "relative"}},
})
register_body("updateTenantSettings", TenantSettings, examples={
    "holdout": {"summary": "Hold 5 % of customers out of NBA", "value": {
        "holdoutPercentage": 5}},
})

Authorized = Annotated[Call[None], Depends(authorized())]
PowerCall = Annotated[Call[PowerRequest], Depends(authorized(PowerRequest))]
SettingsCall = Annotated[Call[TenantSettings], Depends(authorized(TenantSettings))]
ExperimentId = Annotated[str, Path(max_length=255, description="The experiment id (exp_…).")]

add_collection_routes(router, EXPERIMENTS)


@router.delete(
    "/experiments",
    operation_id="deleteExperimentByQuery",
    status_code=204,
    summary="Delete an experiment (?id=)",
    response_class=Response,
    responses=ERROR_RESPONSES,
)
async def delete_experiment_by_query(
    call: Authorized, id: Annotated[str | None, Query(max_length=255)] = None
) -> Response:
    await call.services.experiments.delete(call.tenant_id, id)
    return Response(status_code=204)


@router.post(
    "/experiments/power-calculator",
    operation_id="experimentPowerCalculator",
    summary="Customers needed to detect an effect (two-proportion z-test)",
    response_class=JSONBytes,
    responses={200: {"model": PowerResult}, **ERROR_RESPONSES},
)
async def power_calculator(call: PowerCall) -> JSONBytes:
    return JSONBytes(await call.services.experiments.power(call.tenant_id, call.body))


add_item_routes(router, EXPERIMENTS)


@router.get(
    "/experiments/{experiment_id}/results",
    operation_id="getExperimentResults",
    summary="Per-arm conversion, uplift vs the control and the holdout, significance",
    response_class=JSONBytes,
    responses={200: {"model": ExperimentResultsOut}, **ERROR_RESPONSES},
)
async def get_experiment_results(
    call: Authorized,
    experiment_id: ExperimentId,
    alpha: Annotated[float | None, Query(description="Significance level (0-0.5); "
                                         "default: the experiment's alpha.")] = None,
) -> JSONBytes:
    return JSONBytes(await call.services.experiments.results(call.tenant_id, experiment_id,
                                                             alpha))


@router.get(
    "/tenant-settings",
    operation_id="getTenantSettings",
    summary="The tenant's settings ({} when none)",
    response_class=JSONBytes,
    tags=["Tenant settings"],
    responses={200: {"model": TenantSettingsOut}, **ERROR_RESPONSES},
)
async def get_tenant_settings(call: Authorized) -> JSONBytes:
    return JSONBytes(await call.services.settings.get(call.tenant_id))


@router.put(
    "/tenant-settings",
    operation_id="updateTenantSettings",
    summary="Change some settings (nested objects are merged; null removes a key)",
    response_class=JSONBytes,
    tags=["Tenant settings"],
    responses={200: {"model": TenantSettingsOut}, **ERROR_RESPONSES},
)
async def update_tenant_settings(call: SettingsCall) -> JSONBytes:
    return JSONBytes(await call.services.settings.put(call.tenant_id, call.body))
