"""Golden tests of the experiment statistics against statsmodels and scipy (computed here)."""

from __future__ import annotations

import math

import orjson
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from scipy.stats import chisquare
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
    samplesize_proportions_2indep_onetail,
)

from engine.errors import ValidationError
from engine.experiments import HOLDOUT
from pipelines.experiments import analyze, power, report


def experiment(weights: tuple[float, ...] = (50, 50), *, holdout: float = 0,
               control: int | None = 0, alpha: float = 0.05) -> dict:
    return {
        "key": "exp-1", "name": "Test", "holdoutPercent": holdout, "alpha": alpha,
        "variants": [
            {"key": "control" if i == 0 else f"t{i}", "trafficPercent": w,
             "isControl": i == control}
            for i, w in enumerate(weights)
        ],
    }


def arms(rows: dict[str, tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"variant": list(rows), "n": [n for n, _ in rows.values()],
         "conversions": [x for _, x in rows.values()]},
        schema={"variant": pl.String, "n": pl.Int64, "conversions": pl.Int64},
    )


AB = arms({"control": (1000, 80), "t1": (1000, 120)})


def test_two_arm_golden_against_statsmodels() -> None:
    res = analyze(AB, experiment())
    c = res.comparison("t1")
    z, p = proportions_ztest([120, 80], [1000, 1000])  # pooled by default
    assert c.uplift == pytest.approx(0.04, abs=1e-12)
    assert c.relative_uplift == pytest.approx(0.5, abs=1e-12)
    assert c.z == pytest.approx(z, rel=1e-12)
    assert c.z == pytest.approx(2.98, abs=0.005)
    assert c.p_value == pytest.approx(p, rel=1e-9)
    assert c.p_value == pytest.approx(0.0029, abs=5e-5)
    assert c.p_adjusted == c.p_value and res.correction == "none"
    assert c.significant is True
    lo, hi = confint_proportions_2indep(120, 1000, 80, 1000, method="wald", compare="diff")
    assert (c.uplift_lower, c.uplift_upper) == (pytest.approx(lo, rel=1e-9),
                                                pytest.approx(hi, rel=1e-9))
    assert c.reasons == {}


def test_relative_uplift_delta_method_interval() -> None:
    c = analyze(AB, experiment()).comparison("t1")
    # delta method by numerical gradient of g(pt, pc) = pt/pc - 1
    pt, pc, nt, nc, h = 0.12, 0.08, 1000, 1000, 1e-7
    g = lambda a, b: a / b - 1  # noqa: E731
    d_pt = (g(pt + h, pc) - g(pt - h, pc)) / (2 * h)
    d_pc = (g(pt, pc + h) - g(pt, pc - h)) / (2 * h)
    se = math.sqrt(d_pt**2 * pt * (1 - pt) / nt + d_pc**2 * pc * (1 - pc) / nc)
    assert c.relative_lower == pytest.approx(0.5 - 1.959963984540054 * se, rel=1e-6)
    assert c.relative_upper == pytest.approx(0.5 + 1.959963984540054 * se, rel=1e-6)


@pytest.mark.parametrize(("n", "x"), [(1000, 80), (1000, 120), (37, 0), (37, 37), (5, 2),
                                      (1, 1), (250_000, 3)])
def test_wilson_interval_matches_statsmodels(n: int, x: int) -> None:
    exp = experiment()
    arm = analyze(arms({"control": (n, x), "t1": (10, 5)}), exp).arm("control")
    lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert arm.rate == x / n
    assert arm.ci_lower == pytest.approx(lo, abs=1e-12)
    assert arm.ci_upper == pytest.approx(hi, abs=1e-12)


def test_intervals_follow_alpha() -> None:
    res = analyze(AB, experiment(), alpha=0.01)
    assert res.confidence == pytest.approx(0.99)
    lo, hi = proportion_confint(80, 1000, alpha=0.01, method="wilson")
    assert res.arm("control").ci_lower == pytest.approx(lo, abs=1e-12)
    assert res.comparison("t1").significant is True  # p = 0.0029 < 0.01
    assert analyze(AB, experiment(), alpha=0.001).comparison("t1").significant is False
    assert analyze(AB, experiment(alpha=0.001)).comparison("t1").significant is False
    with pytest.raises(ValidationError) as err:
        analyze(AB, experiment(), alpha=0.7)
    assert err.value.field == "alpha"


def test_holm_across_challengers_matches_multipletests() -> None:
    exp = experiment((25, 25, 25, 25))
    data = arms({"control": (2000, 100), "t1": (2000, 135), "t2": (2000, 128),
                 "t3": (2000, 96)})
    res = analyze(data, exp)
    assert res.correction == "holm"
    raw = [proportions_ztest([x, 100], [2000, 2000])[1] for x in (135, 128, 96)]
    reject, adjusted, _, _ = multipletests(raw, alpha=0.05, method="holm")
    got = [res.comparison(v) for v in ("t1", "t2", "t3")]
    assert [c.p_value for c in got] == pytest.approx(raw, rel=1e-9)
    assert [c.p_adjusted for c in got] == pytest.approx(list(adjusted), rel=1e-9)
    assert [c.significant for c in got] == list(reject)
    assert raw[0] < 0.05 and not reject[0]  # significant raw, not after the correction


def test_control_is_flagged_variant_else_first() -> None:
    flagged = analyze(arms({"control": (1000, 80), "t1": (1000, 120)}), experiment(control=1))
    assert flagged.control == "t1"
    assert flagged.comparison("control").uplift == pytest.approx(-0.04)
    unflagged = analyze(AB, experiment(control=None))
    assert unflagged.control == "control"
    assert [a.role for a in unflagged.arms] == ["control", "challenger"]


def test_sample_ratio_mismatch_matches_scipy() -> None:
    exp = experiment((80, 20))
    ok = analyze(arms({"control": (8050, 400), "t1": (1950, 100)}), exp).srm
    stat, p = chisquare([8050, 1950], [8000, 2000])
    assert ok.chi2 == pytest.approx(stat, rel=1e-12)
    assert ok.p_value == pytest.approx(p, rel=1e-9)
    assert ok.df == 1 and ok.mismatch is False
    bad = analyze(arms({"control": (1000, 50), "t1": (400, 20)}), exp).srm
    assert bad.p_value == pytest.approx(chisquare([1000, 400], [1120, 280])[1], rel=1e-9)
    assert bad.mismatch is True


def test_srm_with_holdout_uses_effective_shares() -> None:
    exp = experiment((50, 50), holdout=10)
    data = arms({"control": (4500, 1), "t1": (4400, 1), HOLDOUT: (1100, 1)})
    srm = analyze(data, exp).srm
    assert srm.arms == ("control", "t1", HOLDOUT)
    assert srm.expected == pytest.approx((4500.0, 4500.0, 1000.0))
    assert srm.p_value == pytest.approx(chisquare([4500, 4400, 1100], [4500, 4500, 1000])[1])
    # holdout not logged: the check covers the variants (renormalised) and says so
    res = analyze(arms({"control": (4500, 1), "t1": (4400, 1)}), exp)
    assert res.srm.arms == ("control", "t1")
    assert res.srm.expected == pytest.approx((4450.0, 4450.0))
    assert any("holdout" in n for n in res.notes)


def test_srm_exposures_in_zero_traffic_arm() -> None:
    srm = analyze(arms({"control": (100, 1), "t1": (3, 0)}), experiment((100, 0))).srm
    assert srm.p_value == 0.0 and srm.mismatch is True and srm.chi2 is None
    assert "0% configured traffic" in srm.reason


def test_holdout_comparison_pools_the_variants() -> None:
    exp = experiment((50, 50), holdout=10)
    res = analyze(arms({"control": (900, 90), "t1": (900, 110), HOLDOUT: (200, 10)}), exp)
    h = res.holdout
    z, p = proportions_ztest([200, 10], [1800, 200])
    assert h.baseline == HOLDOUT
    assert h.uplift == pytest.approx(200 / 1800 - 10 / 200)
    assert h.z == pytest.approx(z) and h.p_value == pytest.approx(p)
    assert res.arm(HOLDOUT).role == "holdout"
    assert analyze(AB, experiment()).holdout is None


# -- values with reasons ---------------------------------------------------------------------
def test_empty_arm_is_values_with_reasons() -> None:
    res = analyze(arms({"control": (1000, 80)}), experiment())  # t1 never exposed
    arm = res.arm("t1")
    assert (arm.n, arm.rate, arm.ci_lower, arm.ci_upper) == (0, None, None, None)
    assert arm.reason == "no exposed customers"
    c = res.comparison("t1")
    assert c.uplift is None and c.z is None and c.p_value is None and c.significant is None
    assert "no exposed customers" in c.reasons["uplift"]
    assert "no exposed customers" in c.reasons["zTest"]
    assert res.srm.mismatch is True  # 1000 vs 0 on a 50/50 split


def test_empty_control_and_empty_experiment() -> None:
    res = analyze(arms({"t1": (50, 5)}), experiment())
    assert "control 'control' has no exposed customers" in res.comparison("t1").reasons["uplift"]
    nothing = analyze(arms({}), experiment())
    assert nothing.srm.p_value is None and nothing.srm.reason == "no exposed customers"
    assert all(a.rate is None for a in nothing.arms)


def test_all_zero_conversions() -> None:
    res = analyze(arms({"control": (500, 0), "t1": (500, 0)}), experiment())
    arm = res.arm("t1")
    assert arm.rate == 0.0 and arm.ci_lower == 0.0 and arm.ci_upper > 0
    c = res.comparison("t1")
    assert c.uplift == 0.0
    assert c.uplift_lower is None and "standard error is 0" in c.reasons["upliftCi"]
    assert c.relative_uplift is None and "rate is 0" in c.reasons["relativeUplift"]
    assert c.z is None and "no customer converted" in c.reasons["zTest"]


def test_all_conversions() -> None:
    res = analyze(arms({"control": (500, 500), "t1": (400, 400)}), experiment())
    assert res.arm("t1").ci_upper == 1.0
    c = res.comparison("t1")
    assert c.uplift == 0.0 and c.relative_uplift == 0.0
    assert c.z is None and "every customer converted" in c.reasons["zTest"]
    assert c.relative_lower is None and "relativeUpliftCi" in c.reasons


def test_zero_control_rate_keeps_the_z_test() -> None:
    c = analyze(arms({"control": (500, 0), "t1": (500, 10)}), experiment()).comparison("t1")
    assert c.relative_uplift is None and "relativeUplift" in c.reasons
    z, p = proportions_ztest([10, 0], [500, 500])
    assert c.z == pytest.approx(z) and c.p_value == pytest.approx(p)
    assert c.uplift_lower == pytest.approx(0.02 - 1.959963984540054 * math.sqrt(0.02 * 0.98 / 500))


def test_unconfigured_variant_is_reported_not_compared() -> None:
    res = analyze(arms({"control": (100, 5), "t1": (100, 6), "ghost": (7, 1)}), experiment())
    assert res.arm("ghost").role == "unconfigured"
    assert [c.variant for c in res.comparisons] == ["t1"]
    assert "ghost" not in res.srm.arms and any("ghost" in n for n in res.notes)


def test_bad_arms_frames_are_validation_errors() -> None:
    with pytest.raises(ValidationError) as err:
        analyze(pl.DataFrame({"variant": ["control"], "n": [1]}), experiment())
    assert err.value.field == "conversions"
    with pytest.raises(ValidationError):
        analyze(arms({"control": (10, 11)}), experiment())
    dup = pl.concat([AB, AB.head(1)])
    with pytest.raises(ValidationError):
        analyze(dup, experiment())
    with pytest.raises(ValidationError) as err:
        analyze(pl.DataFrame({"variant": [None], "n": [1], "conversions": [0]},
                             schema=AB.schema), experiment())
    assert err.value.field == "variant"


@st.composite
def arm_counts(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.sampled_from([0, 1, 2, 10]) | st.integers(0, 10**7))
    x = draw(st.sampled_from([0, n]) | st.integers(0, n))
    return n, x


@settings(max_examples=300, deadline=None)
@given(counts=st.lists(arm_counts(), min_size=2, max_size=4),
       holdout=st.sampled_from([0, 10]), alpha=st.floats(0.001, 0.2))
def test_analyze_never_raises_and_stays_in_range(
    counts: list[tuple[int, int]], holdout: float, alpha: float
) -> None:
    k = len(counts) - (1 if holdout else 0)
    if k < 2:
        return
    exp = experiment(tuple([100 / k] * k), holdout=holdout)
    labels = ["control", *(f"t{i}" for i in range(1, k))] + ([HOLDOUT] if holdout else [])
    res = analyze(arms(dict(zip(labels, counts, strict=True))), exp, alpha=alpha)
    for arm in res.arms:
        assert (arm.rate is None) == (arm.n == 0) == (arm.reason is not None)
        if arm.rate is not None:
            assert 0 <= arm.ci_lower <= arm.rate <= arm.ci_upper <= 1
    for c in [*res.comparisons, *([res.holdout] if res.holdout else [])]:
        for name in ("p_value", "p_adjusted"):
            value = getattr(c, name)
            assert value is None or 0 <= value <= 1
        assert (c.z is None) == ("zTest" in c.reasons or "uplift" in c.reasons)
        if c.uplift_lower is not None:
            assert c.uplift_lower <= c.uplift <= c.uplift_upper
        if c.relative_lower is not None:
            assert c.relative_lower <= c.relative_uplift <= c.relative_upper
        for name in ("uplift", "relative_uplift", "z"):
            value = getattr(c, name)
            assert value is None or math.isfinite(value)
    orjson.dumps(res.to_dict())
    res.frame()


def test_results_serialise_and_frame() -> None:
    res = analyze(arms({"control": (500, 0), "t1": (0, 0)}), experiment((50, 50), holdout=5))
    body = orjson.loads(orjson.dumps(res.to_dict()))
    assert body["experimentKey"] == "exp-1" and body["comparisons"][0]["reasons"]
    frame = res.frame()
    assert frame.columns[:4] == ["variant", "role", "n", "conversions"]
    assert frame["variant"].to_list() == ["control", "t1", HOLDOUT]
    assert frame.filter(pl.col("variant") == "t1")["reason"].item().startswith(
        "no exposed customers")
    full = analyze(AB, experiment()).frame()
    assert full.filter(pl.col("variant") == "t1")["z"].item() == pytest.approx(2.9814, abs=1e-4)
    assert full.filter(pl.col("variant") == "control")["z"].is_null().all()


def test_report_renders() -> None:
    exp = experiment((34, 33, 33), holdout=10)
    res = analyze(arms({"control": (1000, 80), "t1": (1000, 120), "t2": (990, 0),
                        HOLDOUT: (300, 20)}), exp)
    console = Console(record=True, width=220)
    console.print(report(res))
    text = console.export_text()
    for needle in ("control", "t1", "+4.00%", "2.98", "p (Holm)", "Sample ratio", "holdout"):
        assert needle in text


# -- power -----------------------------------------------------------------------------------
def test_power_matches_statsmodels_textbook_formula() -> None:
    got = power(0.05, 0.02)
    n1 = samplesize_proportions_2indep_onetail(diff=0.02, prop2=0.05, power=0.8, alpha=0.05)
    assert got["perVariant"] == {"control": math.ceil(n1), "treatment": math.ceil(n1)}
    assert got["perVariant"]["control"] == 2213  # spec §22.18: "≈2,212 per arm"
    assert got["requiredSampleSize"] == 2 * math.ceil(n1)


@pytest.mark.parametrize(
    ("p", "mde", "mde_type", "alpha", "pw", "split"),
    [(0.05, 0.02, "absolute", 0.05, 0.8, 0.5), (0.1, 0.1, "relative", 0.05, 0.9, 0.5),
     (0.3, 0.05, "absolute", 0.01, 0.8, 0.3), (0.02, 0.25, "relative", 0.1, 0.95, 0.7)],
)
def test_power_against_statsmodels(p: float, mde: float, mde_type: str, alpha: float,
                                   pw: float, split: float) -> None:
    got = power(p, mde, mde_type=mde_type, alpha=alpha, power=pw, split=split)
    delta = mde if mde_type == "absolute" else mde * p
    ratio = (1 - split) / split  # statsmodels: nobs2 (control) = ratio * nobs1 (treatment)
    n_t = samplesize_proportions_2indep_onetail(diff=delta, prop2=p, power=pw, ratio=ratio,
                                                alpha=alpha)
    assert got["perVariant"]["treatment"] == math.ceil(n_t - 1e-6)
    assert got["perVariant"]["control"] == math.ceil(n_t * ratio - 1e-6)
    # Cohen's h (arcsine) approximation agrees to within a few percent
    h = proportion_effectsize(p + delta, p)
    n_h = NormalIndPower().solve_power(h, alpha=alpha, power=pw, ratio=ratio)
    assert got["perVariant"]["treatment"] == pytest.approx(n_h, rel=0.03)


def test_power_sensitivity_table_and_duration() -> None:
    got = power(0.05, 0.02, daily_traffic=1000)
    table = got["sensitivityTable"]
    assert [r["effect"] for r in table] == pytest.approx([0.01, 0.015, 0.02, 0.025, 0.03, 0.04])
    sizes = [r["sampleSize"] for r in table]
    assert sizes == sorted(sizes, reverse=True)
    assert table[2]["sampleSize"] == got["requiredSampleSize"]
    assert got["estimatedDuration"] == {"days": 5, "basedOnDailyTraffic": 1000}
    near_one = power(0.9, 0.06)["sensitivityTable"]
    assert near_one[-1]["sampleSize"] is None and near_one[-1]["reason"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"baseline_rate": 0}, "baselineConversionRate"),
     ({"baseline_rate": 1.5}, "baselineConversionRate"),
     ({"mde": 0.0001}, "minimumDetectableEffect"),
     ({"mde": 2}, "minimumDetectableEffect"),
     ({"alpha": 0.5}, "significanceLevel"), ({"power": 0.3}, "power"),
     ({"power": 0.999}, "power"), ({"split": 0.95}, "trafficSplit"),
     ({"mde_type": "percent"}, "mdeType"),
     ({"baseline_rate": 0.99, "mde": 0.02}, "minimumDetectableEffect"),
     ({"daily_traffic": 0}, "dailyTraffic")],
)
def test_power_validation_names_the_field(kwargs: dict, field: str) -> None:
    args = {"baseline_rate": 0.05, "mde": 0.02} | kwargs
    baseline, mde = args.pop("baseline_rate"), args.pop("mde")
    with pytest.raises(ValidationError) as err:
        power(baseline, mde, **args)
    assert err.value.field == field
