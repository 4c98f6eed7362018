"""Adaptive-learning evidence (spec §10.4): positive / negative outcomes per offer, category
and globally, reduced to one row per catalog offer.

Computed with one ``group_by`` over a history frame. The evidence describes the whole
population, not the customers of one call: the HTTP layer computes it from the full
interaction log and caches it (``Evidence`` is immutable); ``decide`` computes it from the
history it receives only when none is passed.

Lookup per offer: own rate when the offer has >= 50 outcomes; otherwise the prior is the
category rate (>= 20 outcomes), else the global rate (>= 10), else 0.5; offer evidence of
1-49 outcomes is blended ``p = (pos + k * prior) / (n + k)`` with ``k = smoothingWeight``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from engine.catalog import Catalog

OFFER_MIN, CATEGORY_MIN, GLOBAL_MIN = 50, 20, 10
DEFAULT_PROPENSITY = 0.5
EV_N, EV_POS, EV_PRIOR = "_ev_n", "_ev_pos", "_ev_prior"


@dataclass(frozen=True)
class Evidence:
    """One row per catalog offer: ``offer.id``, own outcome count and positives, prior."""

    frame: pl.DataFrame

    def for_offer(self, offer_id: str, smoothing_weight: float = 10.0) -> float:
        row = self.frame.filter(pl.col("offer.id") == offer_id)
        return float(row.select(propensity_expr(smoothing_weight)).item()) if len(row) else 0.5


def compute_evidence(
    catalog: Catalog,
    history: pl.DataFrame | pl.LazyFrame,
    *,
    as_of: datetime | None = None,
) -> Evidence:
    """Evidence from ``history`` (HISTORY_SCHEMA), counting outcomes at or before ``as_of``."""
    lf = history.lazy()
    if as_of is not None:
        lf = lf.filter(pl.col("ts") <= as_of)
    outcome_cls = dict(
        zip(
            catalog.outcome_types.get_column("key").to_list(),
            catalog.outcome_types.get_column("classification").to_list(),
            strict=True,
        )
    )
    offer_cat = dict(
        zip(
            catalog.offers.get_column("offer.id").to_list(),
            catalog.offers.get_column("offer.categoryId").to_list(),
            strict=True,
        )
    )
    cls = pl.coalesce(
        pl.col("classification"),
        pl.col("outcome").replace_strict(outcome_cls, default=None, return_dtype=pl.String),
    )
    cat = pl.coalesce(
        pl.col("category_id"),
        pl.col("offer_id").replace_strict(offer_cat, default=None, return_dtype=pl.String),
    )
    counts = (
        lf.select(pl.col("offer_id"), cat.alias("cat"), cls.alias("cls"))
        .filter(pl.col("cls").is_in(["positive", "negative"]))
        .group_by("offer_id", "cat")
        .agg(n=pl.len().cast(pl.Int64), pos=(pl.col("cls") == "positive").sum().cast(pl.Int64))
        .collect(engine="in-memory")
    )
    g_n, g_pos = int(counts["n"].sum()), int(counts["pos"].sum())
    global_prior = g_pos / g_n if g_n >= GLOBAL_MIN else DEFAULT_PROPENSITY
    by_offer = counts.group_by("offer_id").agg(pl.col("n").sum(), pl.col("pos").sum())
    by_cat = counts.group_by("cat").agg(cat_n=pl.col("n").sum(), cat_pos=pl.col("pos").sum())
    frame = (
        catalog.offers.select("offer.id", "offer.categoryId")
        .join(by_offer, left_on="offer.id", right_on="offer_id", how="left")
        .join(by_cat, left_on="offer.categoryId", right_on="cat", how="left")
        .select(
            "offer.id",
            pl.col("n").fill_null(0).alias(EV_N),
            pl.col("pos").fill_null(0).alias(EV_POS),
            pl.when(pl.col("cat_n").fill_null(0) >= CATEGORY_MIN)
            .then(pl.col("cat_pos") / pl.col("cat_n"))
            .otherwise(pl.lit(global_prior))
            .alias(EV_PRIOR),
        )
    )
    return Evidence(frame)


def propensity_expr(smoothing_weight: float = 10.0) -> pl.Expr:
    """Propensity of a candidate from the evidence columns joined onto it."""
    n = pl.col(EV_N).fill_null(0).cast(pl.Float64)
    pos = pl.col(EV_POS).fill_null(0).cast(pl.Float64)
    prior = pl.col(EV_PRIOR).fill_null(DEFAULT_PROPENSITY)
    k = float(smoothing_weight)
    return (
        pl.when(n >= OFFER_MIN)
        .then(pos / n)
        .when(n >= 1)
        .then((pos + k * prior) / (n + k))
        .otherwise(prior)
    )
