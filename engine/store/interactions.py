"""The append-only interaction log: recommendations, impressions and responses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from engine.catalog.snapshot import HISTORY_SCHEMA
from engine.store._db import Database
from engine.store.tenants import require_tenant

LOG_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "customer_id": pl.String(),
    "offer_id": pl.String(),
    "creative_id": pl.String(),
    "channel_id": pl.String(),
    "placement_id": pl.String(),
    "category_id": pl.String(),
    "recommendation_id": pl.String(),
    "rank": pl.Int32(),
    "outcome": pl.String(),
    "classification": pl.String(),
    "direction": pl.String(),
    "ts": pl.Datetime("us"),
    "value": pl.Float64(),
    "context": pl.String(),
    "idempotency_key": pl.String(),
    "experiment_key": pl.String(),
    "variant": pl.String(),
}
_COLUMNS = ", ".join(LOG_SCHEMA)


def to_log_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Conform a frame to the log's columns: missing ones become null, timestamps naive UTC."""
    cols = []
    for name, dtype in LOG_SCHEMA.items():
        if name not in frame.columns:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
        elif name == "ts" and getattr(frame.schema[name], "time_zone", None):
            cols.append(
                pl.col("ts").dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(dtype)
            )
        else:
            cols.append(pl.col(name).cast(dtype))
    return frame.select(cols)


class Interactions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, tenant_id: str, frame: pl.DataFrame) -> int:
        """Append rows in one transaction (durable when this returns). Returns rows written."""
        if frame.height == 0:
            return 0
        batch = to_log_frame(frame).to_arrow()
        with self.db.transaction() as cur:
            require_tenant(cur, tenant_id)
            cur.register("_log_batch", batch)
            cur.execute(
                f"INSERT INTO interactions SELECT ? AS tenant_id, {_COLUMNS} FROM _log_batch",
                [tenant_id],
            )
            cur.unregister("_log_batch")
        return frame.height

    def count(self, tenant_id: str) -> int:
        return (
            self.db.cursor()
            .execute("SELECT count(*) FROM interactions WHERE tenant_id = ?", [tenant_id])
            .fetchall()[0][0]
        )

    def history(
        self,
        tenant_id: str,
        customer_ids: Sequence[str] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pl.DataFrame:
        """Interactions of the given customers (all when None) as ``HISTORY_SCHEMA``."""
        where = ["tenant_id = ?"]
        params: list[Any] = [tenant_id]
        if customer_ids is not None:
            where.append("customer_id IN (SELECT unnest(?))")
            params.append(list(customer_ids))
        if since is not None:
            where.append("ts >= ?")
            params.append(_naive(since))
        if until is not None:
            where.append("ts < ?")
            params.append(_naive(until))
        cols = ", ".join(HISTORY_SCHEMA)
        frame = (
            self.db.cursor()
            .sql(
                f"SELECT {cols} FROM interactions WHERE {' AND '.join(where)} ORDER BY ts, id",
                params=params,
            )
            .pl()
        )
        return frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC")).cast(HISTORY_SCHEMA)

    def idempotency_keys(self, tenant_id: str | None = None) -> pl.DataFrame:
        where = "idempotency_key IS NOT NULL"
        params: list[Any] = []
        if tenant_id is not None:
            where += " AND tenant_id = ?"
            params.append(tenant_id)
        return (
            self.db.cursor()
            .sql(
                f"SELECT tenant_id, idempotency_key, id FROM interactions WHERE {where}",
                params=params,
            )
            .pl()
        )


def _naive(ts: datetime) -> datetime:
    if ts.tzinfo is not None:
        from datetime import UTC

        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts
