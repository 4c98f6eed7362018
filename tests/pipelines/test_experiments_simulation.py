"""Seeded A/A simulations: with no true difference the test must be calibrated.

Arms are drawn with vectorized numpy binomials (traffic split, then conversions), turned into
the ``arm_stats`` frame shape and analysed one experiment at a time, exactly as in production.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.experiments import analyze

EXPERIMENTS = 2_000
ALPHA = 0.05


def experiment(arms: int) -> dict:
    return {
        "key": "aa", "name": "A/A", "alpha": ALPHA,
        "variants": [{"key": f"v{i}", "trafficPercent": 100 / arms, "isControl": i == 0}
                     for i in range(arms)],
    }


def arms_frame(n: np.ndarray, x: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"variant": [f"v{i}" for i in range(len(n))], "n": n, "conversions": x},
        schema={"variant": pl.String, "n": pl.Int64, "conversions": pl.Int64},
    )


def test_aa_false_positive_rate_and_coverage() -> None:
    rng = np.random.default_rng(20260501)
    rate = rng.uniform(0.05, 0.30, EXPERIMENTS)          # each experiment its own base rate
    traffic = rng.integers(2_000, 10_000, EXPERIMENTS)   # customers entering the experiment
    n_control = rng.binomial(traffic, 0.5)
    n = np.stack([n_control, traffic - n_control], axis=1)
    x = rng.binomial(n, rate[:, None])
    exp = experiment(2)
    positives = covered = srm_alarms = 0
    for i in range(EXPERIMENTS):
        res = analyze(arms_frame(n[i], x[i]), exp)
        c = res.comparison("v1")
        positives += bool(c.significant)
        covered += c.uplift_lower <= 0.0 <= c.uplift_upper
        srm_alarms += bool(res.srm.mismatch)
    fpr, coverage = positives / EXPERIMENTS, covered / EXPERIMENTS
    srm_rate = srm_alarms / EXPERIMENTS
    print(f"\nA/A simulation: {EXPERIMENTS} experiments, alpha={ALPHA}: "
          f"false-positive rate {fpr:.4f}, 95% uplift CI coverage {coverage:.4f}, "
          f"SRM false alarms {srm_rate:.4f}")
    assert 0.03 <= fpr <= 0.07
    assert coverage >= 0.93
    assert srm_rate <= 0.005


def test_aaaa_holm_controls_the_familywise_error() -> None:
    rng = np.random.default_rng(7)
    k = 4
    traffic = rng.integers(4_000, 20_000, EXPERIMENTS)
    n = np.stack([rng.multinomial(t, [1 / k] * k) for t in traffic])
    x = rng.binomial(n, rng.uniform(0.05, 0.30, EXPERIMENTS)[:, None])
    exp = experiment(k)
    any_raw = any_holm = 0
    for i in range(EXPERIMENTS):
        res = analyze(arms_frame(n[i], x[i]), exp)
        any_raw += any(c.p_value < ALPHA for c in res.comparisons)
        any_holm += any(c.significant for c in res.comparisons)
    raw_fwer, holm_fwer = any_raw / EXPERIMENTS, any_holm / EXPERIMENTS
    print(f"\nA/A/A/A simulation: {EXPERIMENTS} experiments, 3 challengers: "
          f"family-wise error unadjusted {raw_fwer:.4f}, Holm {holm_fwer:.4f}")
    assert holm_fwer <= 0.07
    assert raw_fwer > holm_fwer
