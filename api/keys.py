"""API-key management over HTTP: the store call plus the matching auth-cache update."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

from api.runtime import Runtime
from api.schemas import ApiKeyCreate
from engine.errors import ValidationError

WARNING = "Store this key now: it is shown only once and cannot be recovered."


class KeyManager:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def create(self, tenant_id: str, body: ApiKeyCreate) -> dict[str, Any]:
        expires = body.expiresAt
        if expires is not None and expires.tzinfo is not None:
            expires = expires.astimezone(UTC).replace(tzinfo=None)
        if any(not 1 <= len(s) <= 64 for s in body.scopes or ()):
            raise ValidationError("scopes: each scope must be 1-64 characters", field="scopes")
        store = self.runtime.store
        record, raw = await asyncio.to_thread(
            store.api_keys.create, tenant_id, name=body.name, expires_at=expires,
            scopes=list(body.scopes or ()),
        )
        self.runtime.keys.add(tenant_id, record.id, store.api_keys.hash(raw), record.expires_at,
                              record.scopes)
        return {**record.to_dict(), "key": raw, "warning": WARNING}

    async def list(self, tenant_id: str) -> dict[str, Any]:
        keys = await asyncio.to_thread(self.runtime.store.api_keys.list, tenant_id)
        data = [{**k.to_dict(), "lastUsedAt": None} for k in keys]
        return {"data": data, "total": len(data)}

    async def revoke(self, tenant_id: str, key_id: str | None, reason: str | None) -> None:
        if not key_id:
            raise ValidationError("id is required: DELETE /api/v1/api-keys?id=<key id>",
                                  field="id")
        await asyncio.to_thread(self.runtime.store.api_keys.revoke, tenant_id, key_id, reason)
        self.runtime.keys.remove(tenant_id, key_id)
