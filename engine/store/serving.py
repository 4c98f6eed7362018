"""Reads and writes of the realtime serving layer.

The API keeps per-tenant working sets in memory (customers, recent history, seen idempotency
keys, recent recommendations) and group-commits its writes. These are the store operations it
needs: bulk loads at start, a cold-path lookup, and one transaction per write batch that
spans tenants and carries decision traces alongside the log rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from engine.catalog.snapshot import HISTORY_SCHEMA
from engine.store._db import utcnow
from engine.store.store import Store

# The columns of one group-committed log batch, in row-tuple order. Named explicitly in the
# INSERT, so log columns not listed here are simply null for these rows. The trailing
# ``OPTIONAL_COLUMNS`` may be left off a row tuple (a respond row has no experiment): they
# read as null.
BATCH_COLUMNS: tuple[str, ...] = (
    "tenant_id",
    "id",
    "customer_id",
    "offer_id",
    "creative_id",
    "channel_id",
    "placement_id",
    "category_id",
    "recommendation_id",
    "rank",
    "outcome",
    "classification",
    "direction",
    "ts",
    "value",
    "context",
    "idempotency_key",
    "experiment_key",
    "variant",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("experiment_key", "variant")
_LOG_COLUMNS = ", ".join(BATCH_COLUMNS)

_ARROW_TYPES: dict[str, pa.DataType] = {
    "rank": pa.int32(),
    "ts": pa.timestamp("us"),
    "value": pa.float64(),
}
BATCH_ARROW_SCHEMA = pa.schema(
    [(name, _ARROW_TYPES.get(name, pa.string())) for name in BATCH_COLUMNS]
)

RECOMMENDATION_COLUMNS = (
    "recommendation_id",
    "rank",
    "offer_id",
    "creative_id",
    "channel_id",
    "placement_id",
    "category_id",
)


def log_batch(rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Rows in ``BATCH_COLUMNS`` order (naive-UTC ``ts``, ``context`` as JSON text) as Arrow.

    A row may stop before the ``OPTIONAL_COLUMNS``; the missing ones are null."""
    full = [_full(r) for r in rows]
    columns = list(zip(*full, strict=True)) if full else [() for _ in BATCH_COLUMNS]
    return pa.table(
        [
            pa.array(col, type=field.type)
            for col, field in zip(columns, BATCH_ARROW_SCHEMA, strict=True)
        ],
        schema=BATCH_ARROW_SCHEMA,
    )


def _full(row: tuple[Any, ...]) -> tuple[Any, ...]:
    missing = len(BATCH_COLUMNS) - len(row)
    if missing == 0:
        return row
    if 0 < missing <= len(OPTIONAL_COLUMNS):
        return (*row, *(None,) * missing)
    raise ValueError(
        f"a log row has {len(row)} values; it needs {len(BATCH_COLUMNS) - len(OPTIONAL_COLUMNS)}"
        f" to {len(BATCH_COLUMNS)} (BATCH_COLUMNS order)"
    )


def commit_batch(
    store: Store,
    log: pa.Table,
    traces: Sequence[tuple[str, dict[str, Any]]] = (),
    *,
    on_transaction: Callable[[Any], None] | None = None,
) -> None:
    """Append log rows of any tenants and save decision traces in ONE transaction.

    Durable when this returns. ``traces`` are ``(tenant_id, trace)`` pairs; each trace needs
    ``id`` and ``customerId`` (``decisionFlowKey`` optional). ``on_transaction`` runs
    inside the same transaction (the journal records what it absorbed).
    """
    if log.num_rows == 0 and not traces and on_transaction is None:
        return
    if not traces and on_transaction is None:  # one statement: its own transaction
        with store.db.write_lock:
            insert_log(store.db.cursor(), log)
        return
    with store.db.transaction() as cur:
        if log.num_rows:
            insert_log(cur, log)
        if traces:
            _insert_traces(cur, traces)
        if on_transaction is not None:
            on_transaction(cur)


def _insert_traces(cur: Any, traces: Sequence[tuple[str, dict[str, Any]]]) -> None:
    now = utcnow()
    serving_traces = pa.table(  # noqa: F841 - read by name, as in insert_log
        {
            "tenant_id": [t for t, _ in traces],
            "id": [d["id"] for _, d in traces],
            "customer_id": [d["customerId"] for _, d in traces],
            "flow_key": [d.get("decisionFlowKey") for _, d in traces],
            "created_at": pa.array([now] * len(traces), type=pa.timestamp("us")),
            "doc": [orjson.dumps(d).decode() for _, d in traces],
        }
    )
    cur.execute(
        "INSERT INTO decision_traces (tenant_id, id, customer_id, flow_key, "
        "created_at, doc) SELECT * FROM serving_traces"
    )


def insert_log(cur: Any, log: pa.Table) -> None:
    # DuckDB reads the local Arrow table by its name (a replacement scan): ~1 ms less per
    # commit than register() + unregister(), which matters once per group commit
    serving_batch = log  # noqa: F841 - read by the SQL below
    cur.execute(
        f"INSERT INTO interactions ({_LOG_COLUMNS}) SELECT {_LOG_COLUMNS} FROM serving_batch"
    )


def idempotency_records(store: Store, tenant_id: str) -> pl.DataFrame:
    """Every logged idempotency key of a tenant with what its respond returned."""
    return (
        store.db.cursor()
        .sql(
            "SELECT idempotency_key, id, outcome, classification, offer_id FROM interactions "
            "WHERE tenant_id = ? AND idempotency_key IS NOT NULL",
            params=[tenant_id],
        )
        .pl()
    )


def recent_history(store: Store, tenant_id: str, since: datetime | None) -> pl.DataFrame:
    """The tenant's interactions since ``since`` (None: all of them) as ``HISTORY_SCHEMA``,
    sorted by customer."""
    frame = store.interactions.history(tenant_id, since=since)
    return frame.sort("customer_id", "ts", maintain_order=True).cast(HISTORY_SCHEMA)


def recent_recommendations(store: Store, tenant_id: str, limit: int) -> pl.DataFrame:
    """Rows of the tenant's ``limit`` newest recommendations (``RECOMMENDATION_COLUMNS``)."""
    cols = ", ".join(RECOMMENDATION_COLUMNS)
    return (
        store.db.cursor()
        .sql(
            f"SELECT {cols} FROM interactions WHERE tenant_id = ? AND outcome = 'recommendation' "
            "AND recommendation_id IN (SELECT recommendation_id FROM interactions "
            "WHERE tenant_id = ? AND outcome = 'recommendation' AND rank = 1 "
            "ORDER BY ts DESC LIMIT ?) ORDER BY recommendation_id, rank",
            params=[tenant_id, tenant_id, limit],
        )
        .pl()
    )


def find_recommendation(store: Store, tenant_id: str, recommendation_id: str) -> pl.DataFrame:
    """The decision rows of one recommendation (cold path: not in the serving cache)."""
    cols = ", ".join(RECOMMENDATION_COLUMNS)
    return (
        store.db.cursor()
        .sql(
            f"SELECT {cols} FROM interactions WHERE tenant_id = ? AND recommendation_id = ? "
            "AND outcome = 'recommendation' ORDER BY rank",
            params=[tenant_id, recommendation_id],
        )
        .pl()
    )


def customer_frame(store: Store, tenant_id: str) -> pl.DataFrame:
    """Every customer row of the tenant's first customer schema (``customer_id`` +
    ``customer.*``); an empty ``customer_id`` frame when the tenant has no customer data."""
    if not store.customers.schemas(tenant_id):
        return pl.DataFrame(schema={"customer_id": pl.String()})
    return store.customers.fetch(tenant_id)


__all__ = [
    "BATCH_ARROW_SCHEMA",
    "BATCH_COLUMNS",
    "OPTIONAL_COLUMNS",
    "RECOMMENDATION_COLUMNS",
    "commit_batch",
    "customer_frame",
    "insert_log",
    "find_recommendation",
    "idempotency_records",
    "log_batch",
    "recent_history",
    "recent_recommendations",
]
