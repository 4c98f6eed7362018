"""Shared building blocks: typed comparisons, attribute resolution and scope predicates.

Every function returns a ``pl.Expr``; a comparison against a missing value yields null and
the caller decides what null means (qualification: pass; filter: fail).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from engine.flow import columns as c

Schema = Mapping[str, pl.DataType]
NULL_BOOL = pl.lit(None, dtype=pl.Boolean)


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int | float):
        return bool(value)
    return None


def _coerce(expr: pl.Expr, dtype: pl.DataType, value: Any) -> tuple[pl.Expr, Any] | None:
    """Make ``expr`` and a scalar ``value`` comparable; None if they cannot be."""
    if value is None:
        return expr, None
    if dtype.is_numeric():
        num = _to_number(value)
        if num is not None:
            return expr, num
        return expr.cast(pl.String), str(value)
    if dtype == pl.Boolean:
        flag = _to_bool(value)
        return (expr, flag) if flag is not None else (expr.cast(pl.String), str(value))
    if isinstance(dtype, pl.Datetime):
        if isinstance(value, datetime):
            return expr, value
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
        return expr, parsed
    if dtype == pl.String:
        if isinstance(value, bool):
            return expr.str.to_lowercase(), str(value).lower()
        if isinstance(value, int | float):
            return expr.cast(pl.Float64, strict=False), float(value)
        return expr, str(value)
    if dtype == pl.Null:
        return None
    return expr.cast(pl.String, strict=False), str(value)


def _lit(value: Any) -> pl.Expr:
    if isinstance(value, datetime):
        return pl.lit(value, dtype=pl.Datetime("us", value.tzinfo and "UTC"))
    return pl.lit(value)


def _in(expr: pl.Expr, dtype: pl.DataType, values: Sequence[Any]) -> pl.Expr:
    coerced = [_coerce(expr, dtype, v) for v in values]
    kept = [cv for cv in coerced if cv is not None and cv[1] is not None]
    if not kept:
        return pl.lit(False)
    target = kept[0][0]
    items = [v for _, v in kept]
    if all(isinstance(v, float) for v in items):
        return target.cast(pl.Float64, strict=False).is_in(items)
    return target.cast(pl.String, strict=False).is_in([str(v) for v in items])


def compare(expr: pl.Expr, dtype: pl.DataType | None, op: str, value: Any) -> pl.Expr:
    """Boolean expression ``expr <op> value``; null where ``expr`` is null."""
    if op in ("is_null", "not_exists"):
        return pl.lit(True) if dtype is None else expr.is_null()
    if op in ("is_not_null", "exists"):
        return pl.lit(False) if dtype is None else expr.is_not_null()
    if dtype is None or dtype == pl.Null:
        return NULL_BOOL
    valid = pl.when(expr.is_not_null())
    if op in ("in", "not_in"):
        values = value if isinstance(value, list | tuple | set) else [value]
        hit = _in(expr, dtype, list(values))
        return valid.then(hit if op == "in" else ~hit)
    if op == "contains":
        if isinstance(dtype, pl.List):
            return valid.then(expr.list.contains(_coerce_item(dtype, value)))
        return valid.then(expr.cast(pl.String).str.contains(str(value), literal=True))
    if op == "starts_with":
        return valid.then(expr.cast(pl.String).str.starts_with(str(value)))
    if op == "regex":
        return valid.then(expr.cast(pl.String).str.contains(str(value)))
    pair = _coerce(expr, dtype, value)
    if pair is None:
        return NULL_BOOL
    left, right = pair
    rhs = _lit(right)
    result = {
        "eq": lambda: left == rhs,
        "neq": lambda: left != rhs,
        "gt": lambda: left > rhs,
        "gte": lambda: left >= rhs,
        "lt": lambda: left < rhs,
        "lte": lambda: left <= rhs,
    }.get(op)
    if result is None:
        raise ValueError(f"unknown operator {op!r}")
    return result()


def _coerce_item(dtype: pl.List, value: Any) -> Any:
    inner = dtype.inner
    if inner is not None and inner.is_numeric():
        num = _to_number(value)
        return num if num is not None else value
    return str(value)


def resolve_attribute(name: str, schema: Schema) -> tuple[pl.Expr, pl.DataType] | None:
    """A customer attribute by the names users write.

    ``customer.age`` and ``attributes.tier`` are column names; a schema-prefixed
    ``starbucks_customers.age`` or a bare ``age`` resolves to ``customer.age`` then
    ``attributes.age`` (first non-null per row). None when no such column exists.
    """
    if name.startswith(("customer.", "attributes.", "metrics.", "request.")):
        names = [name]
    else:
        base = name.rsplit(".", 1)[-1]
        names = list(
            dict.fromkeys(
                [f"customer.{name}", f"customer.{base}", f"attributes.{name}", f"attributes.{base}"]
            )
        )
    found = [n for n in names if n in schema and schema[n] != pl.Null]
    if not found:
        return None
    dtype = schema[found[0]]
    if len(found) == 1:
        return pl.col(found[0]), dtype
    exprs = [pl.col(found[0])] + [
        pl.col(n) if schema[n] == dtype else pl.col(n).cast(dtype, strict=False) for n in found[1:]
    ]
    return pl.coalesce(exprs), dtype


# Candidate column addressed by each scope (spec §12.2, §13.2).
SCOPE_COLUMNS: dict[str, str] = {
    "offer": c.OFFER_ID,
    "creative": c.CREATIVE_ID,
    "channel": c.CHANNEL_ID,
    "placement": c.PLACEMENT_ID,
    "category": c.CATEGORY_ID,
    "subcategory": "offer.subCategoryId",
}


def scope_assignments(doc: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """``scopes[]`` when present, else ``(scope, scopeId)``. A non-global scope without an id
    behaves as global (documented pitfall, spec §13.3)."""
    raw = doc.get("scopes") or [
        {"scope": doc.get("scope", "global"), "scopeId": doc.get("scopeId")}
    ]
    out = []
    for a in raw:
        scope, scope_id = a.get("scope", "global"), a.get("scopeId")
        out.append(("global", None) if scope == "global" or not scope_id else (scope, scope_id))
    return out


def scope_predicate(assignments: list[tuple[str, str | None]]) -> pl.Expr | None:
    """Which candidates a rule or policy applies to; None = all of them."""
    if any(scope == "global" for scope, _ in assignments):
        return None
    preds = []
    for scope, scope_id in assignments:
        if scope == "segment":
            preds.append(pl.col(c.SEGMENTS).list.contains(scope_id).fill_null(False))
        elif scope in SCOPE_COLUMNS:
            preds.append((pl.col(SCOPE_COLUMNS[scope]) == scope_id).fill_null(False))
        else:  # unknown scope never matches
            preds.append(pl.lit(False))
    return pl.any_horizontal(preds)


def scope_label(assignments: list[tuple[str, str | None]]) -> str:
    return ",".join(s if i is None else f"{s}:{i}" for s, i in assignments)
