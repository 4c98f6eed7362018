"""``/api/v1/api-keys``: mint (raw key shown once), list (never the key), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from api.deps import Call, JSONBytes, authorized
from api.openapi import ERROR_RESPONSES, register_body
from api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyRevoke

router = APIRouter(prefix="/api/v1", tags=["API keys"])

register_body("createApiKey", ApiKeyCreate, required=False, examples={
    "batch": {"summary": "A named key that expires",
              "value": {"name": "Batch Loader", "expiresAt": "2030-06-30T00:00:00Z"}},
})
register_body("revokeApiKey", ApiKeyRevoke, required=False)
register_body("revokeApiKeyById", ApiKeyRevoke, required=False)

Authorized = Annotated[Call[None], Depends(authorized())]
CreateCall = Annotated[Call[ApiKeyCreate], Depends(authorized(ApiKeyCreate, optional=True))]
RevokeCall = Annotated[Call[ApiKeyRevoke], Depends(authorized(ApiKeyRevoke, optional=True))]


@router.post(
    "/api-keys",
    operation_id="createApiKey",
    status_code=201,
    summary="Create an API key (the raw key is returned once)",
    response_class=JSONBytes,
    responses={201: {"model": ApiKeyCreated}, **ERROR_RESPONSES},
)
async def create_api_key(call: CreateCall) -> JSONBytes:
    return JSONBytes(await call.services.keys.create(call.tenant_id, call.body),
                     status_code=201)


@router.get(
    "/api-keys",
    operation_id="listApiKeys",
    summary="List the tenant's active API keys (never the raw key)",
    response_class=JSONBytes,
    responses={200: {"model": ApiKeyList}, **ERROR_RESPONSES},
)
async def list_api_keys(call: Authorized) -> JSONBytes:
    return JSONBytes(await call.services.keys.list(call.tenant_id))


@router.delete(
    "/api-keys",
    operation_id="revokeApiKey",
    status_code=204,
    summary="Revoke an API key (?id=); it stops working at once",
    response_class=Response,
    responses=ERROR_RESPONSES,
)
async def revoke_api_key(
    call: RevokeCall,
    id: Annotated[str | None, Query(max_length=255, description="The key id.")] = None,
) -> Response:
    await call.services.keys.revoke(call.tenant_id, id, call.body.reason)
    return Response(status_code=204)


@router.delete(
    "/api-keys/{key_id}",
    operation_id="revokeApiKeyById",
    status_code=204,
    summary="Revoke an API key by path id",
    response_class=Response,
    responses=ERROR_RESPONSES,
)
async def revoke_api_key_by_id(
    call: RevokeCall, key_id: Annotated[str, Path(max_length=255)]
) -> Response:
    await call.services.keys.revoke(call.tenant_id, key_id, call.body.reason)
    return Response(status_code=204)
