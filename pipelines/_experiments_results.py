"""The frozen result of an experiment analysis, as a dict for the API and a frame for analysts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

Role = Literal["control", "challenger", "holdout", "unconfigured"]


@dataclass(frozen=True)
class ArmResult:
    variant: str
    name: str
    role: Role
    expected_share: float | None  # share of all customers the bucket mapping sends here
    n: int
    conversions: int
    rate: float | None
    ci_lower: float | None  # Wilson interval at the results' confidence
    ci_upper: float | None
    reason: str | None = None  # why rate and interval are null

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant, "name": self.name, "role": self.role,
            "expectedShare": self.expected_share, "n": self.n, "conversions": self.conversions,
            "rate": self.rate, "ciLower": self.ci_lower, "ciUpper": self.ci_upper,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Comparison:
    """``variant`` versus ``baseline`` (the control, or the holdout)."""

    variant: str
    baseline: str
    uplift: float | None
    uplift_lower: float | None
    uplift_upper: float | None
    relative_uplift: float | None
    relative_lower: float | None
    relative_upper: float | None
    z: float | None
    p_value: float | None
    p_adjusted: float | None  # Holm-adjusted across challengers; equals p_value for one test
    significant: bool | None  # p_adjusted < alpha
    reasons: dict[str, str] = field(default_factory=dict)  # output field -> why it is null

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant, "baseline": self.baseline, "uplift": self.uplift,
            "upliftCiLower": self.uplift_lower, "upliftCiUpper": self.uplift_upper,
            "relativeUplift": self.relative_uplift,
            "relativeUpliftCiLower": self.relative_lower,
            "relativeUpliftCiUpper": self.relative_upper,
            "zScore": self.z, "pValue": self.p_value, "pValueAdjusted": self.p_adjusted,
            "significant": self.significant, "reasons": dict(self.reasons),
        }


@dataclass(frozen=True)
class SampleRatioCheck:
    """Chi-square goodness of fit of observed exposures to the configured split."""

    arms: tuple[str, ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]  # expected counts under the configured split
    chi2: float | None
    df: int | None
    p_value: float | None
    mismatch: bool | None  # p_value < threshold
    threshold: float = 0.001
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "arms": list(self.arms), "observed": list(self.observed),
            "expected": list(self.expected), "chi2": self.chi2, "df": self.df,
            "pValue": self.p_value, "mismatch": self.mismatch, "threshold": self.threshold,
            "reason": self.reason,
        }


FRAME_SCHEMA: dict[str, pl.DataType] = {
    "variant": pl.String(), "role": pl.String(), "n": pl.Int64(), "conversions": pl.Int64(),
    "rate": pl.Float64(), "ci_lower": pl.Float64(), "ci_upper": pl.Float64(),
    "uplift": pl.Float64(), "uplift_lower": pl.Float64(), "uplift_upper": pl.Float64(),
    "relative_uplift": pl.Float64(), "relative_lower": pl.Float64(),
    "relative_upper": pl.Float64(), "z": pl.Float64(), "p_value": pl.Float64(),
    "p_adjusted": pl.Float64(), "significant": pl.Boolean(), "reason": pl.String(),
}
_ARM_COLUMNS = ("variant", "role", "n", "conversions", "rate", "ci_lower", "ci_upper", "reason")


@dataclass(frozen=True)
class ExperimentResults:
    key: str
    name: str
    alpha: float
    confidence: float  # level of every interval: 1 - alpha
    control: str
    correction: Literal["holm", "none"]
    arms: tuple[ArmResult, ...]
    comparisons: tuple[Comparison, ...]  # each challenger versus the control
    holdout: Comparison | None  # all variants pooled versus the holdout (not Holm-adjusted)
    srm: SampleRatioCheck
    notes: tuple[str, ...] = ()

    def arm(self, variant: str) -> ArmResult:
        return next(a for a in self.arms if a.variant == variant)

    def comparison(self, variant: str) -> Comparison:
        return next(c for c in self.comparisons if c.variant == variant)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experimentKey": self.key, "name": self.name, "alpha": self.alpha,
            "confidence": self.confidence, "control": self.control,
            "correction": self.correction,
            "arms": [a.to_dict() for a in self.arms],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "holdout": None if self.holdout is None else self.holdout.to_dict(),
            "sampleRatioMismatch": self.srm.to_dict(),
            "notes": list(self.notes),
        }

    def frame(self) -> pl.DataFrame:
        """One row per arm; challenger rows carry their comparison with the control."""
        by_variant = {c.variant: c for c in self.comparisons}
        compared = [k for k in FRAME_SCHEMA if k not in _ARM_COLUMNS]
        rows = []
        for arm in self.arms:
            c = by_variant.get(arm.variant)
            reasons = [arm.reason] if arm.reason else []
            row: dict[str, Any] = {
                "variant": arm.variant, "role": arm.role, "n": arm.n,
                "conversions": arm.conversions, "rate": arm.rate,
                "ci_lower": arm.ci_lower, "ci_upper": arm.ci_upper,
            }
            row.update({k: None if c is None else getattr(c, k) for k in compared})
            if c is not None:
                reasons += [f"{k}: {v}" for k, v in c.reasons.items()]
            row["reason"] = "; ".join(reasons) or None
            rows.append(row)
        return pl.DataFrame(rows, schema=FRAME_SCHEMA)
