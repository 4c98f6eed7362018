"""The per-app service objects the routes call (one call per handler)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from api.keys import KeyManager
from api.responding import Responder
from api.runtime import Runtime


class TraceReader:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def get(self, tenant_id: str, trace_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.runtime.store.traces.get, tenant_id, trace_id)

    async def list(
        self, tenant_id: str, customer_id: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        traces, total = await asyncio.to_thread(
            self.runtime.store.traces.list, tenant_id, customer_id=customer_id, limit=limit,
            offset=offset,
        )
        return {"traces": traces, "total": total, "limit": limit, "offset": offset}


@dataclass(frozen=True)
class Services:
    runtime: Runtime
    keys: KeyManager
    responder: Responder
    traces: TraceReader
    recommender: Any

    @classmethod
    def build(cls, runtime: Runtime) -> Services:
        from api.recommending import Recommender

        return cls(runtime, KeyManager(runtime), Responder(runtime), TraceReader(runtime),
                   Recommender(runtime))
