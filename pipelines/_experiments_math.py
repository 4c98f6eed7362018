"""Closed-form statistics for binary outcomes, on sufficient statistics (n, conversions).

Every function returns values that may be ``None`` together with the reason why; nothing here
raises on degenerate data or calls scipy/statsmodels with it. Normal tail probabilities use
``math.erfc`` (accurate far into the tails) and quantiles ``statistics.NormalDist``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from scipy.stats import chi2

_NORMAL = NormalDist()


def z_quantile(q: float) -> float:
    """Standard normal quantile."""
    return _NORMAL.inv_cdf(q)


def two_sided_p(z: float) -> float:
    """``2 * (1 - Phi(|z|))`` computed as ``erfc(|z| / sqrt 2)``."""
    return math.erfc(abs(z) / math.sqrt(2))


def wilson(n: int, x: int, z: float) -> tuple[float | None, float | None, str | None]:
    """Wilson score interval ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``."""
    if n <= 0:
        return None, None, "no exposed customers"
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the bounds at x = 0 and x = n are exactly 0 and 1; the formula leaves float dust
    lower = 0.0 if x == 0 else max(0.0, centre - half)
    upper = 1.0 if x == n else min(1.0, centre + half)
    return lower, upper, None


@dataclass(frozen=True)
class TwoArm:
    """Treatment ``t`` versus baseline ``c``: absolute and relative uplift, pooled z-test."""

    uplift: float | None
    uplift_lower: float | None
    uplift_upper: float | None
    relative_uplift: float | None
    relative_lower: float | None
    relative_upper: float | None
    z: float | None
    p_value: float | None
    reasons: dict[str, str]


def compare(n_t: int, x_t: int, n_c: int, x_c: int, z_crit: float, *,
            t_label: str = "treatment", c_label: str = "control") -> TwoArm:
    """Compare two arms.

    * absolute uplift ``pT - pC`` with the unpooled Wald interval
      ``± z·sqrt(pT(1-pT)/nT + pC(1-pC)/nC)``;
    * relative uplift ``pT/pC - 1`` with the delta-method interval
      ``± z·sqrt(pT(1-pT)/(nT·pC²) + pT²·pC(1-pC)/(nC·pC⁴))``;
    * pooled two-proportion z-test ``z = (pT - pC) / sqrt(p̂(1-p̂)(1/nT + 1/nC))``,
      ``p̂ = (xT + xC)/(nT + nC)``, two-sided ``p = 2(1 - Phi(|z|))``.
    """
    reasons: dict[str, str] = {}
    if n_t <= 0 or n_c <= 0:
        empty = f"{t_label} has no exposed customers" if n_t <= 0 else (
            f"{c_label} has no exposed customers")
        for name in ("uplift", "relativeUplift", "zTest"):
            reasons[name] = empty
        return TwoArm(None, None, None, None, None, None, None, None, reasons)

    p_t, p_c = x_t / n_t, x_c / n_c
    uplift = p_t - p_c
    var_t, var_c = p_t * (1 - p_t) / n_t, p_c * (1 - p_c) / n_c
    lo = hi = None
    se = math.sqrt(var_t + var_c)
    if se > 0:
        lo, hi = uplift - z_crit * se, uplift + z_crit * se
    else:
        reasons["upliftCi"] = (
            "both conversion rates are 0 or 1, so the unpooled standard error is 0")

    rel = rel_lo = rel_hi = None
    if p_c > 0:
        rel = p_t / p_c - 1
        rel_se = math.sqrt(var_t / p_c**2 + p_t**2 * var_c / p_c**4)
        if rel_se > 0:
            rel_lo, rel_hi = rel - z_crit * rel_se, rel + z_crit * rel_se
        else:
            reasons["relativeUpliftCi"] = (
                f"{t_label} converted no customer" if p_t == 0
                else "every customer converted in both arms"
            ) + ", so the delta-method standard error is 0"
    else:
        reasons["relativeUplift"] = f"{c_label} conversion rate is 0: relative uplift is undefined"

    z = p = None
    pooled = (x_t + x_c) / (n_t + n_c)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    if pooled_se > 0:
        z = uplift / pooled_se
        p = two_sided_p(z)
    else:
        reasons["zTest"] = (
            "no customer converted in either arm" if pooled == 0
            else "every customer converted in both arms"
        ) + ": the pooled standard error is 0, so the z-test is undefined"
    return TwoArm(uplift, lo, hi, rel, rel_lo, rel_hi, z, p, reasons)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as the input)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class ChiSquare:
    statistic: float | None
    df: int | None
    p_value: float | None
    reason: str | None


def chi_square_gof(observed: Sequence[int], shares: Sequence[float]) -> ChiSquare:
    """Pearson goodness of fit of ``observed`` counts to expected ``shares`` (sum 1).

    Arms with zero expected share and zero observations are dropped; observations in an arm
    with zero expected share make the statistic infinite (reported as null, ``p = 0``).
    """
    total = sum(observed)
    if total == 0:
        return ChiSquare(None, None, None, "no exposed customers")
    kept = [(o, s) for o, s in zip(observed, shares, strict=True) if s > 0 or o > 0]
    if any(s == 0 for _, s in kept):
        return ChiSquare(None, len(kept) - 1, 0.0,
                         "customers were exposed in an arm with 0% configured traffic "
                         "(the statistic is infinite)")
    if len(kept) < 2:
        return ChiSquare(None, None, None, "fewer than two arms receive traffic")
    stat = sum((o - total * s) ** 2 / (total * s) for o, s in kept)
    df = len(kept) - 1
    return ChiSquare(stat, df, float(chi2.sf(stat, df)), None)
