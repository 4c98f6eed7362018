"""Interaction history as the nodes read it: prepared once per call, aggregated per level.

Counts are ``group_by`` aggregations over the history joined back onto the candidates by
customer (and offer or category), never per-candidate filtering. A *contact* is an
impression row (outcome ``impression``, not inbound). Every window is measured backwards
from ``as_of`` through ``_age_s`` (seconds before ``as_of``), so aggregation expressions
are static and cached with the compiled flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import polars as pl

from engine.catalog import HISTORY_SCHEMA
from engine.flow import columns as c

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AGE = "_age_s"
IMP = "_imp"
CAT = "_cat"

LEVEL_KEYS: dict[str, tuple[list[str], list[str]]] = {
    # level: (history keys, candidate keys)
    "customer": (["customer_id"], [c.CUSTOMER_ID]),
    "offer": (["customer_id", "offer_id"], [c.CUSTOMER_ID, c.OFFER_ID]),
    "category": (["customer_id", CAT], [c.CUSTOMER_ID, c.CATEGORY_ID]),
}


def empty_history() -> pl.DataFrame:
    return pl.DataFrame(schema=HISTORY_SCHEMA)


def category_expr(offer_categories: Mapping[str, str | None]) -> pl.Expr:
    """The interaction's category: its own ``category_id``, else its offer's category."""
    if not offer_categories:
        return pl.col("category_id").alias(CAT)
    return pl.coalesce(
        pl.col("category_id"),
        pl.col("offer_id").replace_strict(offer_categories, default=None, return_dtype=pl.String),
    ).alias(CAT)


def prepare_history(
    history: pl.DataFrame | pl.LazyFrame | None,
    as_of: datetime,
    category: pl.Expr | None = None,
    lookback: float | None = None,
) -> pl.LazyFrame:
    """Rows at or before ``as_of`` (and younger than ``lookback`` seconds) with ``_age_s``,
    ``_imp`` (and ``_cat`` when asked). One filter, one projection: every aggregation level
    reads this same sub-plan, which Polars evaluates once."""
    lf = (history if history is not None else empty_history()).lazy()
    # integer epoch literals: a tz-aware datetime literal costs ~0.2 ms to build
    now = epoch_us(as_of)
    ts = pl.col("ts").dt.epoch("us")
    keep = ts <= now
    if lookback is not None:
        keep &= ts > now - int(lookback * 1_000_000)
    cols = [((pl.lit(now) - ts) / 1e6).alias(AGE), _IMP]
    if category is not None:
        cols.append(category)
    return lf.filter(keep).with_columns(cols)


def epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


_IMP = (
    ((pl.col("outcome") == "impression") & (pl.col("direction").fill_null("") != "inbound"))
    .fill_null(False)
    .alias(IMP)
)
