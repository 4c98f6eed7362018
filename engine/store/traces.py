"""Persisted decision traces (one JSON document per traced recommendation)."""

from __future__ import annotations

from typing import Any

import orjson

from engine.errors import NotFoundError
from engine.store._db import Database, utcnow


class Traces:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save_many(self, tenant_id: str, traces: list[dict[str, Any]]) -> None:
        """Each trace needs ``id`` and ``customerId``; ``decisionFlowKey`` is optional."""
        if not traces:
            return
        now = utcnow()
        rows = [
            [
                tenant_id,
                t["id"],
                t["customerId"],
                t.get("decisionFlowKey"),
                now,
                orjson.dumps(t).decode(),
            ]
            for t in traces
        ]
        with self.db.transaction() as cur:
            cur.executemany("INSERT INTO decision_traces VALUES (?, ?, ?, ?, ?, ?)", rows)

    def get(self, tenant_id: str, trace_id: str) -> dict[str, Any]:
        row = (
            self.db.cursor()
            .execute(
                "SELECT doc FROM decision_traces WHERE tenant_id = ? AND id = ?",
                [tenant_id, trace_id],
            )
            .fetchall()
        )
        row = row[0] if row else None
        if row is None:
            raise NotFoundError(f"decision trace {trace_id!r} not found", field="id")
        return orjson.loads(row[0])

    def list(
        self, tenant_id: str, *, customer_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        where, params = "tenant_id = ?", [tenant_id]
        if customer_id is not None:
            where += " AND customer_id = ?"
            params.append(customer_id)
        cur = self.db.cursor()
        total = cur.execute(
            f"SELECT count(*) FROM decision_traces WHERE {where}", params
        ).fetchall()[0][0]
        rows = cur.execute(
            f"SELECT doc FROM decision_traces WHERE {where} ORDER BY created_at DESC, id DESC "
            "LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return [orjson.loads(r[0]) for r in rows], total
