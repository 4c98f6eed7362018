"""Sample size for a two-sided two-proportion z-test (the power calculator, spec §15.5).

Textbook normal-approximation formula with the pooled variance under the null and the
unpooled variance under the alternative (Fleiss, *Statistical Methods for Rates and
Proportions*, without continuity correction). With control rate ``p1``, target rate
``p2 = p1 + δ``, treatment share of traffic ``s`` and ``p̄ = (1 - s)·p1 + s·p2``, the total
number of customers is

    N = ( z(1-α/2)·sqrt(p̄(1-p̄)·(1/(1-s) + 1/s)) + z(power)·sqrt(p1(1-p1)/(1-s) + p2(1-p2)/s) )²
        / δ²

and the arms get ``ceil((1-s)·N)`` and ``ceil(s·N)``. For ``s = 0.5`` this is the classic
``n = (z(1-α/2)·sqrt(2p̄(1-p̄)) + z(power)·sqrt(p1(1-p1) + p2(1-p2)))² / δ²`` per arm
(p1 = 0.05, δ = 0.02 -> 2,213 per arm). The far rejection tail is ignored, as usual.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from engine.errors import ValidationError
from pipelines._experiments_math import z_quantile

SENSITIVITY_MULTIPLIERS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def _check(value: float, lo: float, hi: float, param: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ValidationError(
            f"{field} ({param}) must be a number between {lo:g} and {hi:g}, got {value!r}",
            field=field,
        )
    return float(value)


def _total(p1: float, delta: float, alpha: float, power: float, split: float) -> float:
    p2 = p1 + delta
    p_bar = (1 - split) * p1 + split * p2
    null_sd = math.sqrt(p_bar * (1 - p_bar) * (1 / (1 - split) + 1 / split))
    alt_sd = math.sqrt(p1 * (1 - p1) / (1 - split) + p2 * (1 - p2) / split)
    return (z_quantile(1 - alpha / 2) * null_sd + z_quantile(power) * alt_sd) ** 2 / delta**2


def _arms(total: float, split: float) -> tuple[int, int]:
    # the 1e-9 guard keeps float noise (2213.0000000001) from adding a customer
    return math.ceil((1 - split) * total - 1e-9), math.ceil(split * total - 1e-9)


def power(
    baseline_rate: float,
    mde: float,
    *,
    mde_type: Literal["absolute", "relative"] = "absolute",
    alpha: float = 0.05,
    power: float = 0.8,
    split: float = 0.5,
    daily_traffic: float | None = None,
) -> dict[str, Any]:
    """Customers needed to detect an uplift of ``mde`` over ``baseline_rate``.

    ``mde`` is absolute (0.02 = two percentage points) or relative (0.1 = +10 % of the
    baseline); ``split`` is the treatment's share of the experiment's traffic. Ranges as the
    API's power calculator: baseline and mde 0.001-1, alpha 0.01-0.20, power 0.5-0.99, split
    0.1-0.9. ``daily_traffic`` (customers entering the experiment per day), when given, turns
    sample sizes into days. Returns camelCase keys, as the API speaks them.
    """
    p1 = _check(baseline_rate, 0.001, 1, "baseline_rate", "baselineConversionRate")
    effect = _check(mde, 0.001, 1, "mde", "minimumDetectableEffect")
    alpha = _check(alpha, 0.01, 0.20, "alpha", "significanceLevel")
    power = _check(power, 0.5, 0.99, "power", "power")
    split = _check(split, 0.1, 0.9, "split", "trafficSplit")
    if mde_type not in ("absolute", "relative"):
        raise ValidationError(f"mdeType must be 'absolute' or 'relative', got {mde_type!r}",
                              field="mdeType")
    if daily_traffic is not None and (
        not isinstance(daily_traffic, int | float) or not daily_traffic > 0
    ):
        raise ValidationError(f"dailyTraffic must be a positive number, got {daily_traffic!r}",
                              field="dailyTraffic")
    delta = effect if mde_type == "absolute" else effect * p1
    if p1 + delta > 1:
        raise ValidationError(
            f"baseline {p1:g} plus an effect of {delta:g} exceeds a conversion rate of 1; "
            "choose a smaller minimumDetectableEffect",
            field="minimumDetectableEffect",
        )
    n_control, n_treatment = _arms(_total(p1, delta, alpha, power, split), split)
    total = n_control + n_treatment

    def days(n: int) -> int | None:
        return None if daily_traffic is None else math.ceil(n / daily_traffic)

    table = []
    for k in SENSITIVITY_MULTIPLIERS:
        e, d = effect * k, delta * k
        row: dict[str, Any] = {"effect": e, "absoluteEffect": d}
        if p1 + d > 1:
            row.update(sampleSize=None, perVariant=None, days=None,
                       reason="baseline plus this effect exceeds a conversion rate of 1")
        else:
            c, t = _arms(_total(p1, d, alpha, power, split), split)
            row.update(sampleSize=c + t, perVariant={"control": c, "treatment": t},
                       days=days(c + t), reason=None)
        table.append(row)
    return {
        "baselineConversionRate": p1,
        "minimumDetectableEffect": effect,
        "mdeType": mde_type,
        "absoluteEffect": delta,
        "targetConversionRate": p1 + delta,
        "significanceLevel": alpha,
        "power": power,
        "trafficSplit": split,
        "perVariant": {"control": n_control, "treatment": n_treatment},
        "requiredSampleSize": total,
        "estimatedDuration": {"days": days(total), "basedOnDailyTraffic": daily_traffic},
        "sensitivityTable": table,
        "method": "two-sided two-proportion z-test, pooled variance under H0 and unpooled "
                  "under H1 (normal approximation, no continuity correction)",
    }
