"""Compile a behavioural metric definition (spec §14.1) into Polars expressions.

A definition never becomes SQL text: every part of it is a ``pl.Expr`` over the interaction
log's columns (``HISTORY_SCHEMA``), so a client-supplied field, operator or value can only
ever be a column name from a fixed table or a literal.

**Rows.** ``sourceField`` selects the rows a metric aggregates:

============== ===============================================================
impressions    ``outcome == "impression"``
positive       ``classification == "positive"``
negative       ``classification == "negative"``
neutral        ``classification == "neutral"`` and not an impression (a response)
converts       ``outcome`` is ``conversion`` (system key) or ``convert`` (pack alias)
totalValue     ``value`` is not null
anything else  an outcome key: ``outcome == sourceField`` (``click``, ``purchase``...)
============== ===============================================================

``filterConditions`` narrows those rows further (the numerator's and the denominator's).

**Window.** With ``windowDays = d`` a row counts when ``as_of - d days < ts <= as_of``: an
event exactly ``d`` days old is *excluded*, one at ``as_of`` itself is included, and events
after ``as_of`` never count (with or without a window). ``windowDays: null`` = all time up
to ``as_of``.

**Aggregation.** ``count`` counts the rows. ``sum``, ``avg``, ``min`` and ``max`` aggregate
the rows' ``value`` (a null value is skipped; ``sum`` of no value is 0, ``avg``/``min``/
``max`` of no value are null). ``ratio`` is ``numerator / denominator`` where each side is the
count of its rows (``totalValue`` contributes the sum of ``value`` instead); a zero
denominator gives null. ``groupByDimensions`` (≤ 2 of offerId, channelId, creativeId,
outcomeType) split the value per group; rows with a null in a grouping column are left out of
that metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
import pydantic
from pydantic.alias_generators import to_camel

from engine.catalog.documents import BehavioralMetric
from engine.errors import ValidationError

AggregateFunction = Literal["count", "sum", "avg", "min", "max", "ratio"]

# groupByDimensions -> log column
DIMENSIONS: Mapping[str, str] = {
    "offerId": "offer_id",
    "channelId": "channel_id",
    "creativeId": "creative_id",
    "outcomeType": "outcome",
}
# filterConditions field -> log column
FILTER_FIELDS: Mapping[str, str] = {
    **DIMENSIONS,
    "categoryId": "category_id",
    "placementId": "placement_id",
    "direction": "direction",
    "classification": "classification",
    "value": "value",
}
NUMERIC_FIELDS = frozenset({"value"})
SUMMARY_COUNTERS = ("impressions", "positive", "negative", "neutral", "converts", "totalValue")
CONVERSION_OUTCOMES = ("conversion", "convert")
MAX_FILTER_DEPTH = 8
# columns of the store's metadata that are not part of a metric definition
_META = ("version", "createdAt", "updatedAt", "deletedAt", "_count")


def source_predicate(source: str) -> pl.Expr:
    """The rows a ``sourceField`` (summary counter or outcome key) selects; never null."""
    outcome, cls = pl.col("outcome"), pl.col("classification")
    if source == "impressions":
        expr = outcome == "impression"
    elif source in ("positive", "negative"):
        expr = cls == source
    elif source == "neutral":
        expr = (cls == "neutral") & (outcome != "impression")
    elif source == "converts":
        expr = outcome.is_in(list(CONVERSION_OUTCOMES))
    elif source == "totalValue":
        return pl.col("value").is_not_null()
    else:
        expr = outcome == source
    return expr.fill_null(False)


def source_columns(source: str) -> frozenset[str]:
    if source in ("positive", "negative"):
        return frozenset({"classification"})
    if source == "neutral":
        return frozenset({"classification", "outcome"})
    if source == "totalValue":
        return frozenset({"value"})
    return frozenset({"outcome"})


@dataclass(frozen=True, eq=False)
class CompiledMetric:
    """One metric as expressions over the log. Independent of ``as_of`` (cacheable)."""

    name: str
    function: AggregateFunction
    source: str
    denominator_source: str | None
    window_days: int | None
    dimensions: tuple[str, ...]  # camelCase, in definition order
    rows: pl.Expr  # numerator rows: source ∧ filterConditions (no window)
    denominator_rows: pl.Expr | None  # ratio only
    columns: frozenset[str]  # log columns the metric reads (besides customer_id, ts)
    compute_mode: str = "batch"
    status: str = "active"

    @property
    def group_columns(self) -> tuple[str, ...]:
        return tuple(DIMENSIONS[d] for d in self.dimensions)

    def group_key(self) -> pl.Expr:
        """``offerId=off_x|channelId=ch_web`` from the grouping columns; null when ungrouped."""
        if not self.dimensions:
            return pl.lit(None, dtype=pl.String)
        parts: list[pl.Expr] = []
        for i, dim in enumerate(self.dimensions):
            parts += [pl.lit(("|" if i else "") + f"{dim}="), pl.col(DIMENSIONS[dim])]
        return pl.concat_str(parts)

    def flag_columns(self, i: int, in_window: pl.Expr | None) -> dict[str, pl.Expr]:
        """Row-level columns (``_r{i}`` rows, ``_d{i}`` denominator rows, ``_x{i}`` value)."""
        rows = self.rows if in_window is None else self.rows & in_window
        out = {f"_r{i}": rows}
        if self.function in ("sum", "avg", "min", "max") or self.source == "totalValue":
            out[f"_x{i}"] = pl.when(rows).then(pl.col("value"))
        if self.denominator_rows is not None:
            den = self.denominator_rows
            out[f"_d{i}"] = den if in_window is None else den & in_window
            if self.denominator_source == "totalValue":
                out[f"_y{i}"] = pl.when(out[f"_d{i}"]).then(pl.col("value"))
        return out

    def partials(self, i: int) -> list[pl.Expr]:
        """Per-group aggregates of the flag columns (the fast, simple ``group_by`` path)."""
        out = [pl.col(f"_r{i}").sum().alias(f"_n{i}")]
        agg = {"sum": "sum", "avg": "mean", "min": "min", "max": "max"}.get(self.function)
        if agg is not None:
            out.append(getattr(pl.col(f"_x{i}"), agg)().alias(f"_v{i}"))
        if self.function == "ratio":
            if self.source == "totalValue":
                out.append(pl.col(f"_x{i}").sum().alias(f"_v{i}"))
            out.append(pl.col(f"_d{i}").sum().alias(f"_m{i}"))
            if self.denominator_source == "totalValue":
                out.append(pl.col(f"_y{i}").sum().alias(f"_w{i}"))
        return out

    def final(self, i: int) -> tuple[pl.Expr, pl.Expr]:
        """``(matched, value)`` over the partials: matched > 0 means the group has a row."""
        n = pl.col(f"_n{i}")
        if self.function == "count":
            return n, n.cast(pl.Float64)
        if self.function != "ratio":
            return n, pl.col(f"_v{i}").cast(pl.Float64)
        num = (pl.col(f"_v{i}") if self.source == "totalValue" else n).cast(pl.Float64)
        m = pl.col(f"_m{i}")
        den = (pl.col(f"_w{i}") if self.denominator_source == "totalValue" else m).cast(pl.Float64)
        value = pl.when(den != 0).then(num / den).otherwise(None)
        return n + m, value


def compile_metric(definition: Mapping[str, Any] | BehavioralMetric) -> CompiledMetric:
    """Validate a definition (a catalog document or its model) and compile it.

    Raises ``ValidationError`` naming the offending field (``filterConditions.and.0.field``).
    """
    doc = _validated(definition)
    name = doc["name"]
    filt = doc.get("filterConditions")
    where, where_cols = (pl.lit(True), frozenset()) if filt is None else _condition(filt, 0)
    source = doc["sourceField"]
    rows = source_predicate(source) & where
    columns = source_columns(source) | where_cols
    denominator = doc.get("denominatorField") if doc["aggregateFunction"] == "ratio" else None
    den_rows = None
    if denominator is not None:
        den_rows = source_predicate(denominator) & where
        columns |= source_columns(denominator)
    if doc["aggregateFunction"] in ("sum", "avg", "min", "max"):
        columns |= {"value"}
    dims = tuple(doc.get("groupByDimensions", ()))
    if len(set(dims)) != len(dims):
        raise ValidationError(
            f"metric {name!r}: groupByDimensions repeats a dimension", field="groupByDimensions"
        )
    columns |= {DIMENSIONS[d] for d in dims}
    return CompiledMetric(
        name=name,
        function=doc["aggregateFunction"],
        source=source,
        denominator_source=denominator,
        window_days=doc.get("windowDays"),
        dimensions=dims,
        rows=rows,
        denominator_rows=den_rows,
        columns=frozenset(columns),
        compute_mode=doc.get("computeMode", "batch"),
        status=doc.get("status", "active"),
    )


def compile_metrics(
    definitions: Sequence[Mapping[str, Any] | BehavioralMetric | CompiledMetric],
) -> list[CompiledMetric]:
    """Compile many; metric names must be unique."""
    out = [d if isinstance(d, CompiledMetric) else compile_metric(d) for d in definitions]
    seen: set[str] = set()
    for m in out:
        if m.name in seen:
            raise ValidationError(f"metric name {m.name!r} is used twice", field="name")
        seen.add(m.name)
    return out


def _validated(definition: Mapping[str, Any] | BehavioralMetric) -> dict[str, Any]:
    if isinstance(definition, BehavioralMetric):
        return definition.dump()
    if not isinstance(definition, Mapping):
        raise ValidationError("a behavioral metric must be a JSON object", field="body")
    data = {k: v for k, v in definition.items() if k not in _META}
    try:
        return BehavioralMetric.model_validate(data).dump()
    except pydantic.ValidationError as exc:
        details = []
        for err in exc.errors():
            loc = ".".join(to_camel(p) if isinstance(p, str) else str(p) for p in err["loc"])
            details.append(
                {"field": loc or "body", "message": err["msg"].removeprefix("Value error, ")}
            )
        first = details[0]
        raise ValidationError(
            f"invalid behavioral metric: {first['field']}: {first['message']}", details=details
        ) from None


def _condition(node: Mapping[str, Any], depth: int, path: str = "filterConditions"):
    """``(expr, columns)`` of a filter tree; a missing field value never passes a test,
    except ``neq`` and ``not_in`` (a missing value is "not equal")."""
    if depth > MAX_FILTER_DEPTH:
        raise ValidationError(
            f"{path}: filterConditions nest deeper than {MAX_FILTER_DEPTH} levels", field=path
        )
    for group in ("and", "or"):
        if node.get(group) is not None:
            parts = [
                _condition(child, depth + 1, f"{path}.{group}.{i}")
                for i, child in enumerate(node[group])
            ]
            exprs = [e for e, _ in parts]
            cols = frozenset().union(*(c for _, c in parts))
            if not exprs:
                return pl.lit(group == "and"), cols
            combine = pl.all_horizontal if group == "and" else pl.any_horizontal
            return combine(exprs), cols
    field, op, value = node.get("field"), node.get("operator"), node.get("value")
    if field is None or op is None:
        where = f"{path}.{'field' if field is None else 'operator'}"
        raise ValidationError(
            f"{where}: a condition is either {{field, operator, value}} or {{and|or: [...]}}",
            field=where,
        )
    column = FILTER_FIELDS.get(str(field))
    if column is None:
        raise ValidationError(
            f"{path}.field: unknown field {field!r}; Hint: use one of "
            f"{', '.join(FILTER_FIELDS)}",
            field=f"{path}.field",
        )
    numeric = field in NUMERIC_FIELDS
    col = pl.col(column)
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise ValidationError(
                f"{path}.value: operator {op} needs a list of values", field=f"{path}.value"
            )
        items = [_operand(v, numeric, f"{path}.value.{i}") for i, v in enumerate(value)]
        items = [v for v in items if v is not None]
        dtype = pl.Float64 if numeric else pl.String
        hit = col.is_in(pl.Series(items, dtype=dtype).implode()).fill_null(False)
        return (hit if op == "in" else ~hit), frozenset({column})
    if op == "contains":
        if numeric or not isinstance(value, str):
            raise ValidationError(
                f"{path}.value: contains needs a text field and a text value",
                field=f"{path}.value" if not numeric else f"{path}.field",
            )
        return col.str.contains(value, literal=True).fill_null(False), frozenset({column})
    operand = _operand(value, numeric, f"{path}.value")
    if operand is None:
        if op not in ("eq", "neq"):
            raise ValidationError(f"{path}.value: {op} needs a value", field=f"{path}.value")
        return (col.is_null() if op == "eq" else col.is_not_null()), frozenset({column})
    lit = pl.lit(operand, dtype=pl.Float64 if numeric else pl.String)
    if op == "eq":
        expr = col.eq_missing(lit)
    elif op == "neq":
        expr = col.ne_missing(lit)
    else:
        compare = {"gt": col > lit, "gte": col >= lit, "lt": col < lit, "lte": col <= lit}
        expr = compare[str(op)].fill_null(False)
    return expr, frozenset({column})


def _operand(value: Any, numeric: bool, path: str) -> float | str | None:
    if value is None:
        return None
    if numeric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"{path}: expected a number, got {value!r}", field=path)
        return float(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValidationError(f"{path}: expected text, got {value!r}", field=path)
    return str(value)
