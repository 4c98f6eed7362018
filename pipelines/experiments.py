"""Experiment analysis for notebooks, the CLI and the API: pure functions on sufficient stats.

    arms = arm_stats(log, experiment)          # or arm_stats_sql(store, tenant, experiment)
    results = analyze(arms, experiment)        # ExperimentResults: .to_dict(), .frame()
    power(0.05, 0.02)                          # sample size for a planned test
    report(results)                            # a rich Table for ``nextbest experiments report``

``analyze`` reports, per arm, customers ``n``, ``conversions``, the rate and its Wilson
interval; per challenger versus the control (the ``isControl`` variant, else the first):
absolute uplift with an unpooled Wald interval, relative uplift with a delta-method interval,
the pooled two-proportion z-test, Holm-adjusted p-values when there is more than one
challenger (``significant`` uses the adjusted p), all variants pooled versus the holdout when
the experiment has one, and a chi-square sample-ratio-mismatch check. Every interval is at
confidence ``1 - alpha``. What cannot be computed is ``None`` with a reason, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from rich.table import Table

from engine.errors import NotFoundError, ValidationError
from engine.experiments.spec import HOLDOUT, ExperimentSpec, parse_experiment
from pipelines._experiments_log import ARMS_SCHEMA, EXPOSURE_OUTCOME, arm_stats, arm_stats_sql
from pipelines._experiments_math import chi_square_gof, compare, holm, wilson, z_quantile
from pipelines._experiments_power import power
from pipelines._experiments_results import (
    ArmResult,
    Comparison,
    ExperimentResults,
    Role,
    SampleRatioCheck,
)

SRM_THRESHOLD = 0.001
ExperimentLike = Mapping[str, Any] | ExperimentSpec


def _counts(arms: pl.DataFrame | pl.LazyFrame) -> dict[str, tuple[int, int]]:
    frame = arms.collect() if isinstance(arms, pl.LazyFrame) else arms
    missing = [c for c in ARMS_SCHEMA if c not in frame.columns]
    if missing:
        raise ValidationError(f"arms needs columns variant, n, conversions (missing "
                              f"{', '.join(missing)}); build it with arm_stats", field=missing[0])
    rows = frame.select(list(ARMS_SCHEMA)).rows()
    counts: dict[str, tuple[int, int]] = {}
    for variant, n, x in rows:
        if variant is None:
            raise ValidationError("arms has a row without a variant", field="variant")
        if variant in counts:
            raise ValidationError(f"arms lists variant {variant!r} twice", field="variant")
        if n is None or x is None or not 0 <= x <= n:
            raise ValidationError(
                f"arm {variant!r}: need 0 <= conversions <= n, got n={n}, conversions={x}",
                field="conversions")
        counts[variant] = (int(n), int(x))
    return counts


def _arm(variant: str, name: str, role: Role, share: float | None, n: int, x: int,
         z: float) -> ArmResult:
    lo, hi, reason = wilson(n, x, z)
    return ArmResult(variant, name, role, share, n, x, x / n if n else None, lo, hi, reason)


def _comparison(variant: str, baseline: str, two: Any, p_adj: float | None,
                alpha: float) -> Comparison:
    return Comparison(
        variant, baseline, two.uplift, two.uplift_lower, two.uplift_upper,
        two.relative_uplift, two.relative_lower, two.relative_upper, two.z, two.p_value,
        p_adj, None if p_adj is None else p_adj < alpha, dict(two.reasons),
    )


def analyze(
    arms: pl.DataFrame | pl.LazyFrame, experiment: ExperimentLike, *, alpha: float | None = None
) -> ExperimentResults:
    """Analyse per-arm counts (``variant, n, conversions``, as ``arm_stats`` returns them)."""
    spec = parse_experiment(experiment)
    alpha = spec.alpha if alpha is None else alpha
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        raise ValidationError(f"alpha must be between 0 and 0.5 (exclusive), got {alpha!r}",
                              field="alpha")
    counts = _counts(arms)
    z = z_quantile(1 - alpha / 2)
    shares = spec.bucket_shares()
    control = spec.control
    notes: list[str] = []

    def get(label: str) -> tuple[int, int]:
        return counts.get(label, (0, 0))

    results = [
        _arm(v.key, v.name, "control" if v is control else "challenger", shares[v.key],
             *get(v.key), z)
        for v in spec.variants
    ]
    has_holdout = spec.holdout_percent > 0 or HOLDOUT in counts
    if has_holdout:
        results.append(_arm(HOLDOUT, "Holdout", "holdout", shares[HOLDOUT], *get(HOLDOUT), z))
    known = {v.key for v in spec.variants} | {HOLDOUT}
    for label in sorted(set(counts) - known):
        results.append(_arm(label, label, "unconfigured", None, *counts[label], z))
        notes.append(f"variant {label!r} is logged but not configured; it is left out of the "
                     "comparisons and the sample-ratio check")

    # challengers versus the control, Holm across the computable p-values
    challengers = [v for v in spec.variants if v is not control]
    c_n, c_x = get(control.key)
    tests = [
        compare(*get(v.key), c_n, c_x, z, t_label=f"variant {v.key!r}",
                c_label=f"control {control.key!r}")
        for v in challengers
    ]
    computable = [i for i, t in enumerate(tests) if t.p_value is not None]
    adjusted: list[float | None] = [t.p_value for t in tests]
    correction = "holm" if len(challengers) > 1 else "none"
    if correction == "holm" and computable:
        for i, p in zip(computable, holm([tests[i].p_value for i in computable]), strict=True):
            adjusted[i] = p
        if len(computable) < len(tests):
            notes.append("Holm correction covers the challengers whose z-test is defined")
    comparisons = tuple(
        _comparison(v.key, control.key, t, p, alpha)
        for v, t, p in zip(challengers, tests, adjusted, strict=True)
    )

    holdout_cmp = None
    if has_holdout:
        pooled_n = sum(get(v.key)[0] for v in spec.variants)
        pooled_x = sum(get(v.key)[1] for v in spec.variants)
        two = compare(pooled_n, pooled_x, *get(HOLDOUT), z,
                      t_label="the experiment's variants", c_label="the holdout")
        holdout_cmp = _comparison("__experiment__", HOLDOUT, two, two.p_value, alpha)

    return ExperimentResults(
        key=spec.key, name=spec.name, alpha=float(alpha), confidence=1 - alpha,
        control=control.key, correction=correction, arms=tuple(results),
        comparisons=comparisons, holdout=holdout_cmp,
        srm=_srm(spec, get, shares, notes), notes=tuple(notes),
    )


def _srm(spec: ExperimentSpec, get: Any, shares: dict[str, float],
         notes: list[str]) -> SampleRatioCheck:
    labels = [v.key for v in spec.variants]
    if spec.holdout_percent > 0 and get(HOLDOUT)[0] > 0:
        labels.append(HOLDOUT)
    elif spec.holdout_percent > 0:
        notes.append("no holdout exposures are logged; the sample-ratio check covers the "
                     "variants only")
    scale = sum(shares[label] for label in labels)
    expected_shares = [shares[label] / scale for label in labels]
    observed = [get(label)[0] for label in labels]
    test = chi_square_gof(observed, expected_shares)
    total = sum(observed)
    return SampleRatioCheck(
        arms=tuple(labels), observed=tuple(observed),
        expected=tuple(total * s for s in expected_shares),
        chi2=test.statistic, df=test.df, p_value=test.p_value,
        mismatch=None if test.p_value is None else test.p_value < SRM_THRESHOLD,
        threshold=SRM_THRESHOLD, reason=test.reason,
    )


# -- store edges ----------------------------------------------------------------------------
def find_experiment(store: Any, tenant_id: str, key: str) -> dict[str, Any]:
    """The tenant's experiment with ``key`` (``NotFoundError`` when there is none)."""
    for doc in store.experiments.all_active(tenant_id):
        if doc.get("key") == key:
            return doc
    raise NotFoundError(f"experiment {key!r} not found; list them with GET /api/v1/experiments",
                        field="key")


def results_for(store: Any, tenant_id: str, key: str, *,
                alpha: float | None = None) -> ExperimentResults:
    """Analyse the tenant's experiment ``key`` from the store's interaction log."""
    experiment = find_experiment(store, tenant_id, key)
    return analyze(arm_stats_sql(store, tenant_id, experiment), experiment, alpha=alpha)


# -- presentation ---------------------------------------------------------------------------
def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.2%}" if signed else f"{x:.2%}"


def _ci(lo: float | None, hi: float | None, signed: bool = False) -> str:
    return "n/a" if lo is None or hi is None else f"[{_pct(lo, signed)}, {_pct(hi, signed)}]"


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def _p(x: float | None) -> str:
    return "n/a" if x is None else ("<0.0001" if x < 1e-4 else f"{x:.4f}")


def report(results: ExperimentResults) -> Table:
    """The results as a rich Table: one row per arm, challengers against the control."""
    level = f"{results.confidence:.0%}"
    table = Table(title=f"Experiment {results.key} — {results.name}", title_justify="left")
    for col in ("Variant", "Role", "Exposed", "Conv.", "Rate", f"{level} CI", "Uplift",
                f"{level} CI", "Relative", f"{level} CI", "z", "p",
                "p (Holm)" if results.correction == "holm" else "p adj.", "Significant"):
        right = col not in ("Variant", "Role", "Significant")
        table.add_column(col, justify="right" if right else "left")
    by_variant = {c.variant: c for c in results.comparisons}
    footnotes: list[str] = []
    for arm in results.arms:
        row = [arm.variant, arm.role, f"{arm.n:,}", f"{arm.conversions:,}", _pct(arm.rate),
               _ci(arm.ci_lower, arm.ci_upper)]
        if arm.reason:
            footnotes.append(f"{arm.variant}: {arm.reason}")
        c = by_variant.get(arm.variant)
        if c is None:
            row += [""] * 8
        else:
            sig = "n/a" if c.significant is None else ("yes" if c.significant else "no")
            row += [_pct(c.uplift, True), _ci(c.uplift_lower, c.uplift_upper, True),
                    _pct(c.relative_uplift, True),
                    _ci(c.relative_lower, c.relative_upper, True),
                    _num(c.z, ".2f"), _p(c.p_value), _p(c.p_adjusted), sig]
            footnotes += [f"{c.variant} {k}: {v}" for k, v in c.reasons.items()]
        table.add_row(*row)
    srm = results.srm
    if srm.p_value is None:
        srm_line = f"Sample ratio: not tested ({srm.reason})"
    else:
        verdict = "MISMATCH — check assignment and logging" if srm.mismatch else "ok"
        srm_line = f"Sample ratio: chi² p = {srm.p_value:.4g} ({verdict})"
    lines = [srm_line]
    h = results.holdout
    if h is not None:
        lines.append(f"Variants vs holdout: uplift {_pct(h.uplift, True)} "
                     f"{_ci(h.uplift_lower, h.uplift_upper, True)}, "
                     f"p = {_p(h.p_value)}"
                     + "".join(f"; {v}" for v in dict.fromkeys(h.reasons.values())))
    table.caption = "\n".join([*lines, *footnotes, *results.notes])
    table.caption_justify = "left"
    return table


def report_for(store: Any, tenant_id: str, key: str) -> Table:
    """Body of ``nextbest experiments report KEY --tenant T``."""
    return report(results_for(store, tenant_id, key))


__all__ = [
    "ARMS_SCHEMA",
    "EXPOSURE_OUTCOME",
    "ArmResult",
    "Comparison",
    "ExperimentResults",
    "SampleRatioCheck",
    "analyze",
    "arm_stats",
    "arm_stats_sql",
    "find_experiment",
    "power",
    "report",
    "report_for",
    "results_for",
]
