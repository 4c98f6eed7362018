"""``priority_weighted`` scoring (spec §10.1): priority/100 x creative weight/100 x fit.

A candidate without a creative (``requireCreative: false``) counts with weight 100. The unit
columns ``_prio`` / ``_weight`` are divided once per compiled flow with an exact division
(Polars rewrites ``x / 100`` into ``x * 0.01``, which turns 0.7 into 0.7000000000000001).
"""

from __future__ import annotations

import polars as pl

PRIORITY_UNIT = "_prio"
WEIGHT_UNIT = "_weight"


def unit_columns(table: pl.DataFrame) -> pl.DataFrame:
    """Add ``_prio`` and ``_weight`` (exact divisions) to a static candidate table."""
    priority = table.get_column("offer.priority").cast(pl.Float64).to_numpy()
    weight = table.get_column("creative.weight").fill_null(100).cast(pl.Float64).to_numpy()
    return table.with_columns(
        pl.Series(PRIORITY_UNIT, priority / 100.0), pl.Series(WEIGHT_UNIT, weight / 100.0)
    )


def priority_weighted(fit: pl.Expr) -> pl.Expr:
    return pl.col(PRIORITY_UNIT) * pl.col(WEIGHT_UNIT) * fit


def propensity_score(propensity: pl.Expr, fit: pl.Expr) -> pl.Expr:
    """``propensity`` scoring: adaptive propensity x fitMultiplier."""
    return propensity * fit
