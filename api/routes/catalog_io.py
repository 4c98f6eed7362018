"""``/api/v1/catalog/export`` and ``/api/v1/catalog/import``: a whole tenant catalog in the
sample pack's format (JSON, or YAML with ``?format=yaml`` / a YAML Content-Type)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from api.catalog_deps import catalog_call
from api.catalog_entities import CATALOG_ERRORS, CatalogBundle, ImportReport
from api.deps import Call, JSONBytes
from api.openapi import register_body
from engine.catalog import io

router = APIRouter(prefix="/api/v1/catalog", tags=["Catalog import/export"])

NoBody = Annotated[Call[None], Depends(catalog_call())]
ImportCall = Annotated[Call[dict[str, Any]], Depends(catalog_call(body=True, yaml=True))]

register_body(
    "importCatalog",
    CatalogBundle,
    examples={
        "offer": {
            "summary": "Add or update one category and its offer",
            "value": {
                "categories": [{"id": "cat_seasonal", "name": "Seasonal", "status": "active"}],
                "offers": [
                    {
                        "id": "off_pumpkin",
                        "name": "Pumpkin spice week",
                        "status": "active",
                        "categoryId": "cat_seasonal",
                        "priority": 60,
                    }
                ],
            },
        },
    },
)


@router.get(
    "/export",
    operation_id="exportCatalog",
    summary="The tenant's whole catalog, one list of documents per entity",
    response_class=JSONBytes,
    responses={
        200: {
            "model": CatalogBundle,
            "content": {
                "application/yaml": {"schema": {"$ref": "#/components/schemas/CatalogBundle"}}
            },
        },
        **CATALOG_ERRORS,
    },
)
async def export_catalog(
    call: NoBody,
    format: Annotated[
        Literal["json", "yaml"], Query(description="json (default) or yaml")
    ] = "json",
) -> Response:
    bundle = await asyncio.to_thread(io.export_catalog, call.services.runtime.store, call.tenant_id)
    if format == "yaml":
        return Response(io.to_yaml(bundle), media_type="application/yaml")
    return JSONBytes(bundle)


@router.post(
    "/import",
    operation_id="importCatalog",
    summary="Create or update catalog documents by id, all or nothing (dryRun to preview)",
    description="The body is an export (JSON, or YAML with Content-Type application/yaml). "
    "Documents are matched by id, applied in foreign-key order in one transaction "
    "and validated like API writes; nothing is deleted. The answer lists, per "
    "entity, the ids created, updated and unchanged.",
    response_class=JSONBytes,
    responses={200: {"model": ImportReport}, **CATALOG_ERRORS},
)
async def import_catalog(
    call: ImportCall,
    dryRun: Annotated[bool, Query(description="Only report what would change.")] =  # noqa: N803
    False,
) -> JSONBytes:
    report = await asyncio.to_thread(
        io.import_catalog, call.services.runtime.store, call.tenant_id, call.body, dry_run=dryRun
    )
    return JSONBytes(report)
