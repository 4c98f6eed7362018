"""What every node sees: its compile-time context and the per-call context.

A node is compiled once per (catalog version, flow version) and then applied to many calls:
``apply(lf, call) -> LazyFrame``. Phase-1 nodes after the candidate set is built do not
filter; they *mark* rows (``_drop`` = node index, ``_reason``), so funnel counts and traces
come from the same frame. Expressions that depend on which columns exist (attribute
lookups) are cached per column set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from engine.catalog import Catalog
from engine.flow import columns as c
from engine.scoring.evidence import Evidence


@dataclass(frozen=True)
class CompileContext:
    catalog: Catalog
    flow_config: Mapping[str, Any]  # the flow's flowConfig
    creatives: pl.DataFrame  # active creatives on active channels (+ channel, placement)


@dataclass(frozen=True)
class Call:
    """Everything that changes from one call to the next."""

    as_of: datetime
    evidence: Evidence | None
    schema: Mapping[str, pl.DataType]  # columns of the candidate frame
    schema_key: tuple[tuple[str, str], ...]  # hashable digest of the variable columns
    trace: bool
    large: bool = False  # a batch-sized call (what is cheapest differs with the row count)


@dataclass
class Node:
    id: str
    index: int
    type: str
    config: Any
    # history aggregates the node reads, by level (customer / offer / category); the plan
    # computes each level with one group_by and joins it once
    aggs: dict[str, list[pl.Expr]] = field(default_factory=dict, repr=False)
    # seconds of history those aggregates read per level (None = all of it)
    lookback: dict[str, float | None] = field(default_factory=dict, repr=False)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def prepare(self, ctx: CompileContext) -> None:
        """Compile-time work (static tables, rule expressions)."""

    def expressions(self, call: Call) -> list[pl.Expr]:
        """The column expressions ``apply`` adds (cached per column set)."""
        return []

    def apply(self, lf: pl.LazyFrame, call: Call) -> pl.LazyFrame:
        exprs = self.expressions(call)
        return lf.with_columns(exprs) if exprs else lf

    def extend_lookback(self, level: str, seconds: float | None) -> None:
        if level in self.lookback:
            old = self.lookback[level]
            seconds = None if old is None or seconds is None else max(old, seconds)
        self.lookback[level] = seconds

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """Memoize schema-dependent expressions (bounded)."""
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > 64:
                self._cache.clear()
            hit = self._cache[key] = build()
        return hit


def alive() -> pl.Expr:
    return pl.col(c.DROP).is_null()


def conj(*exprs: pl.Expr | None) -> pl.Expr | None:
    """``a & b & …`` over the given operands; None stands for "always true" (and is what an
    empty conjunction returns). Every operator costs at K = 1, so trivial ones are left out."""
    parts = [e for e in exprs if e is not None]
    if not parts:
        return None
    out = parts[0]
    for e in parts[1:]:
        out = out & e
    return out


def any_of(exprs: list[pl.Expr]) -> pl.Expr:
    """``any_horizontal`` without the operator when there is one operand."""
    if not exprs:
        return pl.lit(False)
    return exprs[0] if len(exprs) == 1 else pl.any_horizontal(exprs)


def not_mandatory(catalog: Catalog) -> pl.Expr | None:
    """``not offer.mandatory``, or None when no offer of the catalog is mandatory."""
    if not catalog.offers.get_column(c.MANDATORY).any():
        return None
    return ~pl.col(c.MANDATORY).fill_null(False)


def first_match(cases: list[tuple[pl.Expr, pl.Expr]], dtype: pl.DataType) -> pl.Expr:
    """``when(c1).then(v1).when(c2).then(v2)…`` (null when nothing matches)."""
    if not cases:
        return pl.lit(None, dtype=dtype)
    cond, value = cases[0]
    chain = pl.when(cond).then(value)
    for cond, value in cases[1:]:
        chain = chain.when(cond).then(value)
    return chain.otherwise(pl.lit(None, dtype=dtype))


def mark(
    index: int,
    hits: list[tuple[pl.Expr, str, pl.Expr]],
    extra: list[pl.Expr] | None = None,
    *,
    detail: bool = True,
) -> list[pl.Expr]:
    """Expressions that mark the first hit (priority order) on still-alive rows.

    ``hits`` holds ``(fails, rule id, reason)``; ``fails`` must be non-null booleans. Without
    ``detail`` only ``_drop`` is written (rule id and reason matter to traces only, and
    every expression costs at K = 1).
    """
    if not hits:
        return extra or []
    any_hit = any_of([h for h, _, _ in hits])
    now = alive() & any_hit
    drop = pl.when(now).then(pl.lit(index, dtype=pl.Int16)).otherwise(pl.col(c.DROP))
    if not detail:
        return [drop.alias(c.DROP), *(extra or [])]
    return [
        drop.alias(c.DROP),
        pl.when(now)
        .then(first_match([(h, pl.lit(i)) for h, i, _ in hits], pl.String()))
        .otherwise(pl.col(c.DROP_BY))
        .alias(c.DROP_BY),
        pl.when(now)
        .then(first_match([(h, r) for h, _, r in hits], pl.String()))
        .otherwise(pl.col(c.REASON))
        .alias(c.REASON),
        *(extra or []),
    ]
