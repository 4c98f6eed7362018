"""Catalog CRUD: the same six operations for every entity of ``api.catalog_entities``.

``POST /x`` (201, the created record), ``GET /x`` (cursor page: ``limit`` 1-100, default
25; ``cursor`` = the last id of the previous page; ``includeDeleted``), ``GET /x/{id}``,
``PUT /x/{id}`` (full replace), ``PATCH /x/{id}`` (the given fields only) and
``DELETE /x/{id}`` (soft delete, 204). Every update increments ``version``; ``If-Match``
(or a flow's ``rowVersion``) makes it conditional (stale -> 409). Another tenant's ids are
simply not found (404).

The entities of ``DOCUMENT_ENTITIES`` (behavioural metrics, experiments) have the same
operations through their own services: ``add_collection_routes`` (list, create) and
``add_item_routes`` (get, PUT, PATCH, delete), called by their route modules around the
routes of their own.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from api.catalog_deps import catalog_call
from api.catalog_entities import CATALOG_ERRORS, ENTITIES, CatalogEntity, DocumentEntity
from api.catalog_service import CatalogService
from api.deps import Call, JSONBytes, authorized
from api.openapi import ERROR_RESPONSES, register_body
from api.routes import catalog_flows, catalog_io
from api.schemas import DocumentBody

router = APIRouter(prefix="/api/v1")

NoBody = Annotated[Call[None], Depends(catalog_call())]
WithBody = Annotated[Call[dict[str, Any]], Depends(catalog_call(body=True))]
EntityId = Annotated[str, Path(min_length=1, max_length=255, description="The entity id.")]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1-100).")]
Cursor = Annotated[
    str | None, Query(max_length=255, description="nextCursor of the previous page.")
]
IncludeDeleted = Annotated[bool, Query(description="Also list soft-deleted rows.")]
Stage = Annotated[
    Literal["eligibility", "fit", "match", "ranking"] | None,
    Query(description="Only rules acting as this gate (decisioningStage)."),
]


def service(call: Call[Any]) -> CatalogService:
    return CatalogService(call.services.runtime.store)


def _now() -> datetime:
    return datetime.now(UTC)


def _add_routes(entity: CatalogEntity) -> None:
    table, one, many, label = entity.table, entity.singular, entity.plural, entity.label
    common: dict[str, Any] = {"response_class": JSONBytes, "tags": [entity.tag]}
    record = {200: {"model": entity.record}, **CATALOG_ERRORS}

    async def create(call: WithBody) -> JSONBytes:
        doc = await asyncio.to_thread(
            service(call).create, table, call.tenant_id, call.body, now=_now()
        )
        return JSONBytes(doc, status_code=201)

    summary = (
        f"Create or update the {label} of (channelId, placementId)"
        if table == "flow_routes"
        else f"Create a {label}"
    )
    router.add_api_route(
        entity.path,
        create,
        methods=["POST"],
        operation_id=f"create{one}",
        status_code=201,
        summary=summary,
        responses={201: {"model": entity.record}, **CATALOG_ERRORS},
        **common,
    )
    register_body(f"create{one}", entity.create_body)

    async def list_page(
        call: NoBody,
        limit: Limit = 25,
        cursor: Cursor = None,
        includeDeleted: IncludeDeleted = False,
    ) -> JSONBytes:  # noqa: N803
        page = await asyncio.to_thread(
            service(call).list,
            table,
            call.tenant_id,
            limit=limit,
            cursor=cursor,
            include_deleted=includeDeleted,
        )
        return JSONBytes(page)

    async def list_rules(
        call: NoBody,
        limit: Limit = 25,
        cursor: Cursor = None,
        includeDeleted: IncludeDeleted = False,  # noqa: N803
        stage: Stage = None,
    ) -> JSONBytes:
        page = await asyncio.to_thread(
            service(call).list,
            table,
            call.tenant_id,
            limit=limit,
            cursor=cursor,
            include_deleted=includeDeleted,
            stage=stage,
        )
        return JSONBytes(page)

    router.add_api_route(
        entity.path,
        list_rules if table == "qualification_rules" else list_page,
        methods=["GET"],
        operation_id=f"list{many}",
        summary=f"List {label}s, newest id first",
        responses={200: {"model": entity.page}, **CATALOG_ERRORS},
        **common,
    )

    async def get(call: NoBody, id: EntityId, includeDeleted: IncludeDeleted = False) -> JSONBytes:  # noqa: N803
        doc = await asyncio.to_thread(
            service(call).get, table, call.tenant_id, id, include_deleted=includeDeleted
        )
        return JSONBytes(doc)

    router.add_api_route(
        f"{entity.path}/{{id}}",
        get,
        methods=["GET"],
        operation_id=f"get{one}",
        summary=f"Get a {label}",
        responses=record,
        **common,
    )

    def updater(replace: bool) -> Any:
        async def update(call: WithBody, id: EntityId) -> JSONBytes:
            doc = await asyncio.to_thread(
                service(call).update,
                table,
                call.tenant_id,
                id,
                call.body,
                replace=replace,
                if_match=call.headers.get("if-match"),
                now=_now(),
            )
            return JSONBytes(doc)

        return update

    router.add_api_route(
        f"{entity.path}/{{id}}",
        updater(True),
        methods=["PUT"],
        operation_id=f"replace{one}",
        summary=f"Replace a {label} (omitted fields take their defaults)",
        responses=record,
        **common,
    )
    register_body(f"replace{one}", entity.replace_body)
    router.add_api_route(
        f"{entity.path}/{{id}}",
        updater(False),
        methods=["PATCH"],
        operation_id=f"update{one}",
        summary=f"Update some fields of a {label}",
        responses=record,
        **common,
    )
    register_body(f"update{one}", entity.patch_body)

    async def delete(call: NoBody, id: EntityId) -> Response:
        await asyncio.to_thread(service(call).delete, table, call.tenant_id, id)
        return Response(status_code=204)

    cascade = (
        " (and its creatives)"
        if table == "offers"
        else (" (and its placements)" if table == "channels" else "")
    )
    router.add_api_route(
        f"{entity.path}/{{id}}",
        delete,
        methods=["DELETE"],
        operation_id=f"delete{one}",
        status_code=204,
        summary=f"Soft-delete a {label}{cascade}",
        response_class=Response,
        responses=CATALOG_ERRORS,
        tags=[entity.tag],
    )


for _entity in ENTITIES:
    _add_routes(_entity)


Authorized = Annotated[Call[None], Depends(authorized())]
DocumentCall = Annotated[Call[DocumentBody], Depends(authorized(DocumentBody))]


def _document_service(entity: DocumentEntity, call: Call[Any]) -> Any:
    return getattr(call.services, entity.service)


def add_collection_routes(router: APIRouter, entity: DocumentEntity) -> None:
    """``GET`` (cursor page) and ``POST`` (201) on the entity's path."""

    async def list_page(
        call: Authorized,
        limit: Annotated[int, Query(ge=1, le=100)] = 25,
        cursor: Annotated[str | None, Query(max_length=255)] = None,
        includeDeleted: bool = False,  # noqa: N803
    ) -> JSONBytes:
        service = _document_service(entity, call)
        return JSONBytes(await service.list(call.tenant_id, limit, cursor, includeDeleted))

    router.add_api_route(
        entity.path,
        list_page,
        methods=["GET"],
        operation_id=f"list{entity.plural}",
        summary=entity.list_summary,
        response_class=JSONBytes,
        responses={200: {"model": entity.page}, **ERROR_RESPONSES},
    )

    async def create(call: DocumentCall) -> JSONBytes:
        service = _document_service(entity, call)
        return JSONBytes(await service.create(call.tenant_id, call.body.root), status_code=201)

    router.add_api_route(
        entity.path,
        create,
        methods=["POST"],
        operation_id=f"create{entity.singular}",
        status_code=201,
        summary=entity.create_summary,
        response_class=JSONBytes,
        responses={201: {"model": entity.record}, **entity.write_errors},
    )
    register_body(f"create{entity.singular}", entity.create_body, examples=entity.create_examples)


def add_item_routes(router: APIRouter, entity: DocumentEntity) -> None:
    """``GET``, ``PUT``/``PATCH`` (both merge the fields sent) and ``DELETE`` (soft, 204) on
    ``{path}/{param}``."""
    path = f"{entity.path}/{{{entity.param}}}"
    # a default, not an Annotated alias: annotations are strings, resolved at module level
    document_id = Path(alias=entity.param, max_length=255, description=entity.param_doc)
    one = entity.singular

    async def get(call: Authorized, id: str = document_id) -> JSONBytes:
        return JSONBytes(await _document_service(entity, call).get(call.tenant_id, id))

    router.add_api_route(
        path,
        get,
        methods=["GET"],
        operation_id=f"get{one}",
        summary=f"One {entity.label.split(' ', 1)[1]}",
        response_class=JSONBytes,
        responses={200: {"model": entity.record}, **ERROR_RESPONSES},
    )

    async def update(call: DocumentCall, id: str = document_id) -> JSONBytes:
        service = _document_service(entity, call)
        return JSONBytes(await service.update(call.tenant_id, id, call.body.root))

    for method, operation, summary in (
        ("PUT", f"update{one}", entity.put_summary),
        ("PATCH", f"patch{one}", f"Change some fields of {entity.label}"),
    ):
        router.add_api_route(
            path,
            update,
            methods=[method],
            operation_id=operation,
            summary=summary,
            response_class=JSONBytes,
            responses={200: {"model": entity.record}, **entity.write_errors},
        )
        register_body(operation, DocumentBody, examples=entity.update_examples)

    async def delete(call: Authorized, id: str = document_id) -> Response:
        await _document_service(entity, call).delete(call.tenant_id, id)
        return Response(status_code=204)

    router.add_api_route(
        path,
        delete,
        methods=["DELETE"],
        operation_id=f"delete{one}",
        status_code=204,
        summary=f"Delete {entity.label} (soft delete)",
        response_class=Response,
        responses=ERROR_RESPONSES,
    )


# Flow lifecycle routes first: /decision-flows/versions must win over /decision-flows/{id}.
CATALOG_ROUTERS = (catalog_flows.router, router, catalog_io.router)

__all__ = [
    "CATALOG_ROUTERS",
    "add_collection_routes",
    "add_item_routes",
    "router",
    "service",
]
