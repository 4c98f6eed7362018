"""Materialised behavioural metric values (table ``metric_values``, migration 2).

Rows are ``(tenant_id, metric, customer_id, group_key, value, as_of)`` in the long format of
``engine.metrics.compute_metrics``: one row per metric and customer (and group key) with at
least one matching event; a missing row reads 0 for count/sum metrics, null otherwise.
A refresh replaces one ``(tenant, as_of)`` snapshot in one transaction; readers use the
latest ``as_of`` unless told otherwise. Functions take the ``Store`` or its ``Database``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from engine.errors import ValidationError
from engine.store._db import Database
from engine.store.tenants import require_tenant

VALUE_COLUMNS = ("metric", "customer_id", "group_key", "value")
_SCHEMA: dict[str, pl.DataType] = {
    "metric": pl.String(),
    "customer_id": pl.String(),
    "group_key": pl.String(),
    "value": pl.Float64(),
}


def _db(store: Any) -> Database:
    return store if isinstance(store, Database) else store.db


def _naive(ts: datetime) -> datetime:
    if not isinstance(ts, datetime):
        raise ValidationError(f"as_of must be a datetime, got {ts!r}", field="asOf")
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def replace_metric_values(
    store: Any,
    tenant_id: str,
    *,
    as_of: datetime,
    values: pl.DataFrame,
    prune_older: bool = False,
) -> int:
    """Replace the tenant's snapshot at ``as_of`` with ``values`` (DELETE + INSERT, one
    transaction); with ``prune_older`` older snapshots go too. Returns rows written."""
    missing = [c for c in VALUE_COLUMNS if c not in values.columns]
    if missing:
        raise ValidationError(f"values lacks column(s) {', '.join(missing)}", field="values")
    stamp = _naive(as_of)
    batch = values.select(VALUE_COLUMNS).cast(_SCHEMA).to_arrow()  # type: ignore[arg-type]
    db = _db(store)
    compare = "<=" if prune_older else "="
    with db.transaction() as cur:
        require_tenant(cur, tenant_id)
        cur.execute(
            f"DELETE FROM metric_values WHERE tenant_id = ? AND as_of {compare} ?",
            [tenant_id, stamp],
        )
        cur.register("_metric_batch", batch)
        try:
            cur.execute(
                "INSERT INTO metric_values SELECT ? AS tenant_id, metric, customer_id, group_key, "
                "value, ? AS as_of FROM _metric_batch",
                [tenant_id, stamp],
            )
        finally:
            cur.unregister("_metric_batch")
    return values.height


def latest_as_of(store: Any, tenant_id: str) -> datetime | None:
    """The newest snapshot time of the tenant (naive UTC), or None before any refresh."""
    rows = (
        _db(store)
        .cursor()
        .execute("SELECT max(as_of) FROM metric_values WHERE tenant_id = ?", [tenant_id])
        .fetchall()
    )
    return rows[0][0] if rows else None


def read_metric_values(
    store: Any,
    tenant_id: str,
    *,
    customer_ids: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    as_of: datetime | None = None,
) -> pl.DataFrame:
    """Long rows (``metric, customer_id, group_key, value``) of one snapshot (the latest by
    default), optionally for some customers and metrics."""
    stamp = latest_as_of(store, tenant_id) if as_of is None else _naive(as_of)
    if stamp is None:
        return pl.DataFrame(schema=_SCHEMA)
    where, params = ["tenant_id = ?", "as_of = ?"], [tenant_id, stamp]
    if customer_ids is not None:
        where.append("customer_id IN (SELECT unnest(?))")
        params.append(list(customer_ids))
    if metrics is not None:
        where.append("metric IN (SELECT unnest(?))")
        params.append(list(metrics))
    frame = (
        _db(store)
        .cursor()
        .sql(
            f"SELECT metric, customer_id, group_key, value FROM metric_values "
            f"WHERE {' AND '.join(where)}",
            params=params,
        )
        .pl()
    )
    return frame.cast(_SCHEMA)  # type: ignore[arg-type]


def value_counts(store: Any, tenant_id: str, *, as_of: datetime | None = None) -> dict[str, int]:
    """Rows per metric in a snapshot (the latest by default): the API's ``_count.values``."""
    stamp = latest_as_of(store, tenant_id) if as_of is None else _naive(as_of)
    if stamp is None:
        return {}
    rows = (
        _db(store)
        .cursor()
        .execute(
            "SELECT metric, count(*) FROM metric_values WHERE tenant_id = ? AND as_of = ? "
            "GROUP BY metric ORDER BY metric",
            [tenant_id, stamp],
        )
        .fetchall()
    )
    return {name: int(n) for name, n in rows}
