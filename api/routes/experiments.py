"""``/api/v1/experiments`` (spec §15) and ``/api/v1/tenant-settings`` (§19.2, whose
``holdoutPercentage`` is the tenant-level holdout of §15.4).

An *active* experiment assigns every recommend's customer to a variant
(``engine.experiments.assign``); the variant's exposures and conversions in the log are
what ``/results`` analyses. Variants must split 100 % of the traffic (400), keys are unique
per tenant (a duplicate is a 400, spec §15.1) and one experiment is active at a time (409).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from api.deps import Call, JSONBytes, authorized
from api.openapi import ERROR_RESPONSES, register_body
from api.schemas import (
    DocumentBody,
    ErrorEnvelope,
    ExperimentList,
    ExperimentOut,
    ExperimentResultsOut,
    PowerRequest,
    PowerResult,
    TenantSettings,
    TenantSettingsOut,
)
from engine.catalog.documents import Experiment

router = APIRouter(prefix="/api/v1", tags=["Experiments"])

register_body("createExperiment", Experiment, examples={
    "creatives": {"summary": "Two creative weightings, 50/50, 10 % holdout", "value": {
        "key": "hero-copy-test", "name": "Hero copy test", "status": "active",
        "holdoutPercent": 10, "conversionOutcomes": ["conversion"],
        "variants": [
            {"key": "control", "trafficPercent": 50, "isControl": True},
            {"key": "bold", "trafficPercent": 50,
             "creativeWeights": {"cr_bogo_5_5d_web": 100, "cr_bogo_5_7d_web": 10}},
        ],
    }},
    "flows": {"summary": "Priority flow vs propensity flow", "value": {
        "key": "propensity-vs-priority", "name": "Propensity scoring", "status": "draft",
        "variants": [
            {"key": "control", "trafficPercent": 50, "isControl": True},
            {"key": "propensity", "trafficPercent": 50, "decisionFlowId": "propensity-flow"},
        ],
    }},
})
for operation in ("updateExperiment", "patchExperiment"):
    register_body(operation, DocumentBody, examples={
        "start": {"summary": "Start the experiment", "value": {"status": "active"}},
    })
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
DocumentCall = Annotated[Call[DocumentBody], Depends(authorized(DocumentBody))]
PowerCall = Annotated[Call[PowerRequest], Depends(authorized(PowerRequest))]
SettingsCall = Annotated[Call[TenantSettings], Depends(authorized(TenantSettings))]
ExperimentId = Annotated[str, Path(max_length=255, description="The experiment id (exp_…).")]
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    409: {"model": ErrorEnvelope,
          "description": "Another experiment is active, or the id exists (CONFLICT)"},
}


@router.get(
    "/experiments",
    operation_id="listExperiments",
    summary="Experiments, newest first (cursor pagination)",
    response_class=JSONBytes,
    responses={200: {"model": ExperimentList}, **ERROR_RESPONSES},
)
async def list_experiments(
    call: Authorized,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=255)] = None,
    includeDeleted: bool = False,  # noqa: N803
) -> JSONBytes:
    return JSONBytes(await call.services.experiments.list(call.tenant_id, limit, cursor,
                                                          includeDeleted))


@router.post(
    "/experiments",
    operation_id="createExperiment",
    status_code=201,
    summary="Create an experiment (variants split 100 % of the traffic)",
    response_class=JSONBytes,
    responses={201: {"model": ExperimentOut}, **WRITE_RESPONSES},
)
async def create_experiment(call: DocumentCall) -> JSONBytes:
    return JSONBytes(await call.services.experiments.create(call.tenant_id, call.body.root),
                     status_code=201)


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


@router.get(
    "/experiments/{experiment_id}",
    operation_id="getExperiment",
    summary="One experiment",
    response_class=JSONBytes,
    responses={200: {"model": ExperimentOut}, **ERROR_RESPONSES},
)
async def get_experiment(call: Authorized, experiment_id: ExperimentId) -> JSONBytes:
    return JSONBytes(await call.services.experiments.get(call.tenant_id, experiment_id))


@router.put(
    "/experiments/{experiment_id}",
    operation_id="updateExperiment",
    summary="Update an experiment (fields sent replace the stored ones; variants wholesale)",
    response_class=JSONBytes,
    responses={200: {"model": ExperimentOut}, **WRITE_RESPONSES},
)
async def update_experiment(call: DocumentCall, experiment_id: ExperimentId) -> JSONBytes:
    return JSONBytes(await call.services.experiments.update(call.tenant_id, experiment_id,
                                                            call.body.root))


@router.patch(
    "/experiments/{experiment_id}",
    operation_id="patchExperiment",
    summary="Change some fields of an experiment",
    response_class=JSONBytes,
    responses={200: {"model": ExperimentOut}, **WRITE_RESPONSES},
)
async def patch_experiment(call: DocumentCall, experiment_id: ExperimentId) -> JSONBytes:
    return JSONBytes(await call.services.experiments.update(call.tenant_id, experiment_id,
                                                            call.body.root))


@router.delete(
    "/experiments/{experiment_id}",
    operation_id="deleteExperiment",
    status_code=204,
    summary="Delete an experiment (soft delete)",
    response_class=Response,
    responses=ERROR_RESPONSES,
)
async def delete_experiment(call: Authorized, experiment_id: ExperimentId) -> Response:
    await call.services.experiments.delete(call.tenant_id, experiment_id)
    return Response(status_code=204)


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
