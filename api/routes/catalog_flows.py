"""Decision-flow lifecycle: publish, versions, rollback and the Base NBA flow (spec §9.1).

Each action exists by path (``/decision-flows/{id}/publish``) and, as the spec documents
it, with the id in the body or query (``/decision-flows/publish`` ``{id, notes}``,
``/decision-flows/versions?id=``). Publish and rollback answer the updated flow; both
accept ``rowVersion`` (or ``If-Match``) and refuse a stale one with 409.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from api.catalog_entities import (
    BY_TABLE,
    CATALOG_ERRORS,
    EnsureBaseResult,
    FlowVersionDetail,
    FlowVersions,
    PublishFlow,
    PublishFlowById,
    RollbackFlow,
    RollbackFlowById,
)
from api.catalog_service import parse_if_match, record
from api.deps import Call, JSONBytes, authorized
from api.openapi import register_body
from engine.flow import publish

FLOW = BY_TABLE["decision_flows"]
router = APIRouter(prefix="/api/v1/decision-flows", tags=[FLOW.tag])

NoBody = Annotated[Call[None], Depends(authorized())]
PublishCall = Annotated[Call[PublishFlow], Depends(authorized(PublishFlow, optional=True))]
PublishByIdCall = Annotated[Call[PublishFlowById], Depends(authorized(PublishFlowById))]
RollbackCall = Annotated[Call[RollbackFlow], Depends(authorized(RollbackFlow))]
RollbackByIdCall = Annotated[Call[RollbackFlowById], Depends(authorized(RollbackFlowById))]
FlowId = Annotated[str, Path(min_length=1, max_length=255, description="The flow id.")]
VersionQuery = Annotated[
    int | None, Query(ge=1, le=1_000_000, description="One version, with its config.")
]
FLOW_RESPONSES = {200: {"model": FLOW.record}, **CATALOG_ERRORS}

register_body(
    "publishDecisionFlow",
    PublishFlow,
    required=False,
    examples={
        "notes": {"summary": "Publish the draft", "value": {"notes": "Tighter income gate"}},
    },
)
register_body(
    "publishDecisionFlowById",
    PublishFlowById,
    examples={
        "notes": {
            "summary": "Publish by id",
            "value": {"id": "flow_starbucks", "notes": "Tighter income gate"},
        },
    },
)
register_body(
    "rollbackDecisionFlow",
    RollbackFlow,
    examples={
        "v1": {"summary": "Back to version 1", "value": {"version": 1, "notes": "bad release"}},
    },
)
register_body("rollbackDecisionFlowById", RollbackFlowById)


def _now() -> datetime:
    return datetime.now(UTC)


def _expected(call: Call[Any], row_version: int | None) -> int | None:
    return row_version if row_version is not None else parse_if_match(call.headers.get("if-match"))


async def _publish(call: Call[Any], flow_id: str, body: PublishFlow) -> JSONBytes:
    doc = await asyncio.to_thread(
        publish.publish,
        call.services.runtime.store,
        call.tenant_id,
        flow_id,
        now=_now(),
        notes=body.notes,
        expected_version=_expected(call, body.rowVersion),
    )
    return JSONBytes(record(FLOW.table, call.tenant_id, doc))


async def _rollback(call: Call[Any], flow_id: str, body: RollbackFlow) -> JSONBytes:
    doc = await asyncio.to_thread(
        publish.rollback,
        call.services.runtime.store,
        call.tenant_id,
        flow_id,
        version=body.version,
        now=_now(),
        notes=body.notes,
        expected_version=_expected(call, body.rowVersion),
    )
    return JSONBytes(record(FLOW.table, call.tenant_id, doc))


async def _versions(call: Call[Any], flow_id: str, version: int | None) -> JSONBytes:
    store = call.services.runtime.store
    if version is None:
        out = await asyncio.to_thread(publish.versions, store, call.tenant_id, flow_id)
    else:
        out = await asyncio.to_thread(publish.version, store, call.tenant_id, flow_id, version)
    return JSONBytes(out)


@router.post(
    "/ensure-base",
    operation_id="ensureBaseDecisionFlow",
    status_code=201,
    summary="Create the Base NBA flow if the tenant has none (201), else return it (200)",
    response_class=JSONBytes,
    responses={
        200: {"model": EnsureBaseResult},
        201: {"model": EnsureBaseResult},
        **CATALOG_ERRORS,
    },
)
async def ensure_base(call: NoBody) -> JSONBytes:
    flow_id, created = await asyncio.to_thread(
        publish.ensure_base, call.services.runtime.store, call.tenant_id, now=_now()
    )
    return JSONBytes({"flowId": flow_id, "created": created}, status_code=201 if created else 200)


@router.post(
    "/publish",
    operation_id="publishDecisionFlowById",
    summary="Publish a flow's draft as its next version (id in the body)",
    response_class=JSONBytes,
    responses=FLOW_RESPONSES,
)
async def publish_by_id(call: PublishByIdCall) -> JSONBytes:
    return await _publish(call, call.body.id, call.body)


@router.post(
    "/rollback",
    operation_id="rollbackDecisionFlowById",
    summary="Append a version equal to an earlier one (id in the body)",
    response_class=JSONBytes,
    responses=FLOW_RESPONSES,
)
async def rollback_by_id(call: RollbackByIdCall) -> JSONBytes:
    return await _rollback(call, call.body.id, call.body)


@router.get(
    "/versions",
    operation_id="listDecisionFlowVersionsById",
    summary="A flow's published versions, in publish order (?id=)",
    response_class=JSONBytes,
    responses={200: {"model": FlowVersions | FlowVersionDetail}, **CATALOG_ERRORS},
)
async def versions_by_id(
    call: NoBody,
    id: Annotated[str, Query(min_length=1, max_length=255, description="The flow id.")],
    version: VersionQuery = None,
) -> JSONBytes:
    return await _versions(call, id, version)


@router.post(
    "/{id}/publish",
    operation_id="publishDecisionFlow",
    summary="Publish the flow's draft as its next (immutable) version",
    response_class=JSONBytes,
    responses=FLOW_RESPONSES,
)
async def publish_flow(call: PublishCall, id: FlowId) -> JSONBytes:
    return await _publish(call, id, call.body)


@router.post(
    "/{id}/rollback",
    operation_id="rollbackDecisionFlow",
    summary="Append a version equal to an earlier one and make it the draft",
    response_class=JSONBytes,
    responses=FLOW_RESPONSES,
)
async def rollback_flow(call: RollbackCall, id: FlowId) -> JSONBytes:
    return await _rollback(call, id, call.body)


@router.get(
    "/{id}/versions",
    operation_id="listDecisionFlowVersions",
    summary="The flow's published versions, in publish order (?version= for one config)",
    response_class=JSONBytes,
    responses={200: {"model": FlowVersions | FlowVersionDetail}, **CATALOG_ERRORS},
)
async def flow_versions(call: NoBody, id: FlowId, version: VersionQuery = None) -> JSONBytes:
    return await _versions(call, id, version)
