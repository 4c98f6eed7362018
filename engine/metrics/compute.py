"""Behavioural metric values from the interaction log: one implementation, batch and realtime.

``compute_metrics(history, metrics, as_of=...)`` is a function of frames. The batch refresh
(``pipelines.metrics.refresh``) runs it over the whole log; the realtime path runs it over one
customer's rows (``realtime_values``). Same expressions, same edges, same values.

Output is *long*: ``metric, customer_id, group_key, value`` (``LONG_SCHEMA``) with one row per
metric and customer (and group key) that has at least one matching row in the window — for a
ratio, a numerator or a denominator row. A metric/customer/group with no matching row has no
row: readers fill ``count`` and ``sum`` with 0 and leave ``avg``/``min``/``max``/``ratio``
null (``engine.metrics.wide``). Rows come in no particular order.

Plan: one filter (``ts <= as_of``, the widest window), then per distinct grouping (customer,
customer × offer, ...) one pass that computes a boolean/value column per metric and one
``group_by`` whose aggregations are all plain ``sum``/``mean``/``min``/``max`` of columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from engine.catalog.documents import BehavioralMetric
from engine.errors import ValidationError
from engine.metrics.compile import CompiledMetric, compile_metrics

LONG_SCHEMA: dict[str, pl.DataType] = {
    "metric": pl.String(),
    "customer_id": pl.String(),
    "group_key": pl.String(),
    "value": pl.Float64(),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# below this many input rows the in-memory engine is cheaper (per-query overhead dominates)
IN_MEMORY_ROWS = 20_000

MetricLike = Mapping[str, Any] | BehavioralMetric | CompiledMetric


def empty_long() -> pl.DataFrame:
    return pl.DataFrame(schema=LONG_SCHEMA)


def utc(as_of: datetime) -> datetime:
    """``as_of`` as an aware UTC datetime; a naive one is taken as UTC."""
    if not isinstance(as_of, datetime):
        raise ValidationError(f"as_of must be a datetime, got {as_of!r}", field="asOf")
    return as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)


def metrics_plan(
    history: pl.LazyFrame | pl.DataFrame,
    metrics: Sequence[MetricLike],
    *,
    as_of: datetime,
) -> pl.LazyFrame:
    """The lazy plan of ``compute_metrics`` (for callers that collect it themselves)."""
    compiled = compile_metrics(metrics)
    if not compiled:
        return empty_long().lazy()
    lf = history.lazy()
    schema = lf.collect_schema()
    needed = {"customer_id", "ts"}.union(*(m.columns for m in compiled))
    missing = sorted(needed - set(schema))
    if missing:
        raise ValidationError(
            f"the history frame lacks column(s) {', '.join(missing)}", field="history"
        )
    ts_type = schema["ts"]
    if not isinstance(ts_type, pl.Datetime):
        raise ValidationError("the history column ts must be a Datetime", field="history.ts")
    as_of = utc(as_of)

    def at(moment: datetime) -> pl.Expr:
        # an integer literal cast to the column's type: ~10x cheaper than a datetime literal
        micros = (moment - _EPOCH) // timedelta(microseconds=1)
        us = pl.Datetime("us", "UTC" if ts_type.time_zone else None)
        return pl.lit(micros, dtype=pl.Int64).cast(us).cast(ts_type)

    ts = pl.col("ts")
    keep = (ts <= at(as_of)) & pl.col("customer_id").is_not_null()
    if all(m.window_days is not None for m in compiled):
        widest = max(m.window_days or 0 for m in compiled)
        keep &= ts > at(as_of - timedelta(days=widest))
    lf = lf.select(sorted(needed)).filter(keep)

    groups: dict[tuple[str, ...], list[tuple[int, CompiledMetric]]] = {}
    for i, m in enumerate(compiled):
        groups.setdefault(m.group_columns, []).append((i, m))
    parts: list[pl.LazyFrame] = []
    for cols, items in groups.items():
        flags: dict[str, pl.Expr] = {}
        for i, m in items:
            window = None if m.window_days is None else ts > at(as_of - timedelta(m.window_days))
            flags.update(m.flag_columns(i, window))
        any_row = pl.any_horizontal([pl.col(n) for n in flags if n.startswith(("_r", "_d"))])
        part = lf
        if cols:
            part = part.filter(pl.all_horizontal([pl.col(c).is_not_null() for c in cols]))
        grouped = (
            part.with_columns(**flags)
            .filter(any_row)
            .group_by(["customer_id", *cols])
            .agg([e for i, m in items for e in m.partials(i)])
        )
        for i, m in items:
            matched, value = m.final(i)
            parts.append(
                grouped.filter(matched > 0).select(
                    pl.lit(m.name, dtype=pl.String).alias("metric"),
                    pl.col("customer_id").cast(pl.String),
                    m.group_key().cast(pl.String).alias("group_key"),
                    value.alias("value"),
                )
            )
    return pl.concat(parts, how="vertical")


def compute_metrics(
    history: pl.LazyFrame | pl.DataFrame,
    metrics: Sequence[MetricLike],
    *,
    as_of: datetime,
) -> pl.DataFrame:
    """Every metric's value per customer (and group key) as of ``as_of``; see module doc.

    ``history``: interaction rows with at least ``customer_id``, ``ts`` (UTC, aware or naive)
    and the columns the metrics read (``HISTORY_SCHEMA`` has them all). ``metrics``: catalog
    documents (``store.behavioral_metrics`` rows), ``BehavioralMetric`` models or compiled
    metrics; all of them are computed whatever their status.
    """
    plan = metrics_plan(history, metrics, as_of=as_of)
    small = isinstance(history, pl.DataFrame) and history.height <= IN_MEMORY_ROWS
    return plan.collect(engine="in-memory" if small else "auto")


def realtime_values(
    history_of_customer: pl.DataFrame | pl.LazyFrame,
    metrics: Sequence[MetricLike],
    as_of: datetime,
) -> pl.DataFrame:
    """``compute_metrics`` over one customer's rows: equal to the batch values at ``as_of``."""
    return compute_metrics(history_of_customer, metrics, as_of=as_of)
