"""PRIE arbitration (spec §10.2): a weighted geometric mean of four factors in [0, 1]

    score = P^Wp x R^Wr x I^Wi x E^We,   Wp + Wr + Wi + We = 1 (default 0.4 / 0.2 / 0.3 / 0.1)

How the factors are derived (the normative derivation of §10.2; the docs are qualitative):

- **P, propensity**: the adaptive propensity of the offer (§10.4, ``evidence.py``): own rate
  from >= 50 outcomes, else blended with the category / global prior, else 0.5.
- **R, relevance**: the candidate's contextual fit, i.e. its ``fitMultiplier``: 1.0 unless
  soft (``match``) qualification rules failed, each multiplying it by its decay. Channel and
  placement fit are already enforced by ``match_creatives`` (a candidate only exists on a
  channel/placement the request targets), so they contribute 1.0.
- **I, impact**: the offer's ``businessValue`` on the unit interval. When every business
  value in the catalog lies in [0, 100], ``I = businessValue / 100``; otherwise
  ``I = businessValue / max(businessValue)`` over the catalog (a scale, not a min-max, so only
  a true zero eliminates). Negative values clamp to 0; an offer without a business value
  gets the neutral 0.5. The normalisation is catalog-wide, so a customer's score never
  depends on who else is decided in the same call.
- **E, emphasis**: the operator's lever, ``priority / 100``.

Each factor >= 0 is clamped to [EPSILON, 1]; a factor of exactly 0 with a positive weight
zeroes the score and the candidate is eliminated. A zero weight ignores its factor
(``x^0 = 1``), so all weight on P reproduces P.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

EPSILON = 1e-6


@dataclass(frozen=True)
class PrieWeights:
    propensity: float = 0.4
    relevance: float = 0.2
    impact: float = 0.3
    emphasis: float = 0.1


def clamp_factor(x: pl.Expr) -> pl.Expr:
    """0 stays 0 (eliminates); anything else lands in [EPSILON, 1]; null counts as 0.5."""
    x = x.cast(pl.Float64).fill_null(0.5)
    return pl.when(x <= 0).then(0.0).otherwise(x.clip(EPSILON, 1.0))


def impact_expr(business_values: pl.Series) -> pl.Expr:
    """The I factor for the offers of one catalog (static per catalog version)."""
    values = business_values.drop_nulls()
    bv = pl.col("offer.businessValue").cast(pl.Float64)
    if len(values) == 0 or (values.min() >= 0 and values.max() <= 100):
        scaled = bv / 100.0
    else:
        top = float(values.max())
        scaled = bv / top if top > 0 else pl.lit(0.0)
    return pl.when(bv.is_null()).then(0.5).otherwise(scaled.clip(0.0, 1.0))


def emphasis_expr() -> pl.Expr:
    return pl.col("_prio")  # priority / 100, see priority.unit_columns


def prie(
    p: pl.Expr, r: pl.Expr, i: pl.Expr, e: pl.Expr, weights: PrieWeights = PrieWeights()
) -> pl.Expr:
    """The weighted geometric mean of clamped factors."""
    terms = [
        (p, weights.propensity),
        (r, weights.relevance),
        (i, weights.impact),
        (e, weights.emphasis),
    ]
    out = pl.lit(1.0)
    for factor, w in terms:
        if w > 0:
            out = out * clamp_factor(factor).pow(w)
    return out
