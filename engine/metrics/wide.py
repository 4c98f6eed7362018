"""Metric values as the decision engine reads them: ``metrics.<name>`` columns.

* ``metrics_wide(long, customer_ids)`` — one row per requested customer, one
  ``metrics.<name>`` column per **ungrouped** metric; join it onto the ``customers`` frame
  that ``engine.decide`` receives (``customer_id`` + ``customer.*`` + ``metrics.*``).
* ``metrics_for_candidates(long, candidates)`` — adds ``metrics.<name>`` to the candidate
  frame (``customer × offer × creative`` rows with ``offer.id``, ``channel.id``,
  ``creative.id``). A metric grouped by offerId / channelId / creativeId (one or two of them)
  is joined on the candidate's own ids, so ``metrics.offer_clicks_7d`` on a candidate row is
  that customer's clicks *on that offer*; ungrouped metrics are joined by customer.
  Metrics grouped by ``outcomeType`` have no candidate-level key and are not joined: read them
  from the long frame or ``metric_values``.

Missing values: with the definitions passed as ``metrics=``, a ``count`` or ``sum`` metric
without a row reads 0 (no matching event), every other function reads null (the spec's
"missing value reads as null"), and every metric gets a column even when nothing matched.
Without definitions, columns exist only for metrics present in ``long`` and gaps stay null.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import polars as pl

from engine.metrics.compile import CompiledMetric, compile_metrics
from engine.metrics.compute import MetricLike

PREFIX = "metrics."
# candidate frame column for each joinable grouping dimension
CANDIDATE_KEYS = {"offerId": "offer.id", "channelId": "channel.id", "creativeId": "creative.id"}
ZERO_WHEN_MISSING = ("count", "sum")

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def column_name(metric: str) -> str:
    return f"{PREFIX}{metric}"


def metrics_wide(
    long: pl.DataFrame,
    customer_ids: Sequence[str] | pl.Series | pl.DataFrame,
    metrics: Sequence[MetricLike] | None = None,
) -> pl.DataFrame:
    """``customer_id`` (in the order given) + ``metrics.<name>`` for each ungrouped metric."""
    ids = _ids_frame(customer_ids)
    compiled = None if metrics is None else compile_metrics(metrics)
    dims = _dimensions(long, compiled)
    names = [name for name, d in dims.items() if not d]
    if not names:
        return ids
    table = _pivot(long.filter(pl.col("group_key").is_null()), ["customer_id"], names)
    out = ids.join(table, on="customer_id", how="left", maintain_order="left")
    return out.with_columns(_fills(compiled, names))


def metrics_for_candidates(
    long: pl.DataFrame,
    candidates: Frame,
    metrics: Sequence[MetricLike] | None = None,
) -> Frame:
    """``candidates`` plus ``metrics.<name>`` for every metric it does not carry already."""
    schema = candidates.collect_schema() if isinstance(candidates, pl.LazyFrame) else (
        candidates.schema
    )
    compiled = None if metrics is None else compile_metrics(metrics)
    dims = _dimensions(long, compiled)
    todo = {
        name: d
        for name, d in dims.items()
        if column_name(name) not in schema and all(x in CANDIDATE_KEYS for x in d)
    }
    lf = candidates.lazy()
    by_dims: dict[tuple[str, ...], list[str]] = {}
    for name, d in todo.items():
        by_dims.setdefault(d, []).append(name)
    temp: list[str] = []
    for d, names in by_dims.items():
        part = long.filter(pl.col("metric").is_in(names))
        if not d:
            table = _pivot(part.filter(pl.col("group_key").is_null()), ["customer_id"], names)
            lf = lf.join(table.lazy(), on="customer_id", how="left", maintain_order="left")
            continue
        key = "_mkey." + ".".join(d)
        temp.append(key)
        parts: list[pl.Expr] = []
        for i, dim in enumerate(d):
            parts += [pl.lit(("|" if i else "") + f"{dim}="), pl.col(CANDIDATE_KEYS[dim])]
        table = _pivot(part.rename({"group_key": key}), ["customer_id", key], names)
        lf = lf.with_columns(pl.concat_str(parts).alias(key)).join(
            table.lazy(), on=["customer_id", key], how="left", maintain_order="left"
        )
    lf = lf.drop(temp).with_columns(_fills(compiled, list(todo)))
    return lf if isinstance(candidates, pl.LazyFrame) else lf.collect()


def _ids_frame(customer_ids: Sequence[str] | pl.Series | pl.DataFrame) -> pl.DataFrame:
    if isinstance(customer_ids, pl.DataFrame):
        return customer_ids.select(pl.col("customer_id").cast(pl.String))
    return pl.DataFrame({"customer_id": pl.Series(list(customer_ids), dtype=pl.String)})


def _dimensions(
    long: pl.DataFrame, compiled: list[CompiledMetric] | None
) -> dict[str, tuple[str, ...]]:
    """metric name -> grouping dimensions, from the definitions or read off the group keys."""
    if compiled is not None:
        return {m.name: m.dimensions for m in compiled}
    keys = long.group_by("metric").agg(pl.col("group_key").drop_nulls().first())
    out: dict[str, tuple[str, ...]] = {}
    for name, key in keys.sort("metric").iter_rows():
        out[name] = () if key is None else tuple(p.split("=", 1)[0] for p in key.split("|"))
    return out


def _pivot(long: pl.DataFrame, index: list[str], names: list[str]) -> pl.DataFrame:
    aggs = [
        pl.col("value").filter(pl.col("metric") == n).first().alias(column_name(n))
        for n in names
    ]
    return long.group_by(index).agg(aggs) if long.height else pl.DataFrame(
        schema={**{c: pl.String() for c in index}, **{column_name(n): pl.Float64() for n in names}}
    )


def _fills(compiled: list[CompiledMetric] | None, names: list[str]) -> list[pl.Expr]:
    if compiled is None:
        return []
    functions = {m.name: m.function for m in compiled}
    zero = [n for n in names if functions.get(n) in ZERO_WHEN_MISSING]
    return [pl.col(column_name(n)).fill_null(0.0) for n in zero]
