"""``arm_stats`` on a hand-written log, and the DuckDB path agreeing with the Polars one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from rich.console import Console

from engine.errors import NotFoundError
from engine.experiments import HOLDOUT
from engine.store import Store
from engine.store.interactions import LOG_SCHEMA
from pipelines.experiments import arm_stats, arm_stats_sql, report_for, results_for

T0 = datetime(2026, 5, 1)

EXPERIMENT = {
    "key": "exp-1",
    "name": "Banner test",
    "holdoutPercent": 10,
    "conversionOutcomes": ["conversion", "purchase"],
    "variants": [
        {"key": "control", "trafficPercent": 50, "isControl": True},
        {"key": "t1", "trafficPercent": 50},
    ],
}


def t(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def log_frame(rows: list[tuple]) -> pl.DataFrame:
    """Rows of (customer_id, outcome, hours, experiment_key, variant) as a log frame."""
    return pl.DataFrame(
        {
            "id": [f"i{i}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "outcome": [r[1] for r in rows],
            "ts": [t(r[2]) for r in rows],
            "experiment_key": [r[3] if len(r) > 3 else None for r in rows],
            "variant": [r[4] if len(r) > 4 else None for r in rows],
        },
        schema={"id": pl.String, "customer_id": pl.String, "outcome": pl.String,
                "ts": pl.Datetime("us"), "experiment_key": pl.String, "variant": pl.String},
    )


REC = "recommendation"
LOG = log_frame([
    ("c1", REC, 1, "exp-1", "control"), ("c1", "conversion", 2),          # converted
    ("c2", "conversion", 1), ("c2", REC, 2, "exp-1", "control"),          # converted before
    ("c3", REC, 1, "exp-1", "t1"), ("c3", "conversion", 2),               # counted once
    ("c3", REC, 3, "exp-1", "t1"), ("c3", "conversion", 4),
    ("c4", REC, 5, "exp-1", "t1"), ("c4", REC, 6, "exp-1", "control"),    # first exposure wins
    ("c4", "purchase", 6),                                                # any listed outcome
    ("c5", REC, 1, "exp-1", "t1"), ("c5", "click", 2),                    # not a conversion
    ("c6", "conversion", 1),                                              # never exposed
    ("c7", REC, 1, "exp-2", "t1"), ("c7", "conversion", 3),               # other experiment
    ("c8", "impression", 1, "exp-1", "t1"), ("c8", "conversion", 2),      # not a recommendation
    ("c9", REC, 7, "exp-1", "t1"), ("c9", "conversion", 7),               # same instant counts
    ("c10", REC, 1, "exp-1", HOLDOUT), ("c10", "conversion", 9),          # the holdout arm
    ("c11", REC, 1, "exp-1", None), ("c11", "conversion", 2),             # untagged variant
    ("c12", REC, 1), ("c12", "conversion", 2),                            # no experiment
])

EXPECTED = pl.DataFrame(
    {"variant": ["control", "t1", HOLDOUT], "n": [2, 4, 1], "conversions": [1, 3, 1]},
    schema={"variant": pl.String, "n": pl.Int64, "conversions": pl.Int64},
)


def test_arm_stats_golden() -> None:
    assert_frame_equal(arm_stats(LOG, EXPERIMENT), EXPECTED)


def test_arm_stats_is_independent_of_row_order_and_frame_kind() -> None:
    for seed in range(5):
        shuffled = LOG.sample(fraction=1.0, shuffle=True, seed=seed)
        assert_frame_equal(arm_stats(shuffled.lazy(), EXPERIMENT), EXPECTED)
    aware = LOG.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    assert_frame_equal(arm_stats(aware, EXPERIMENT), EXPECTED)


def test_arm_stats_defaults_and_unconfigured_variants() -> None:
    exp = EXPERIMENT | {"holdoutPercent": 0, "conversionOutcomes": ["conversion"]}
    extra = pl.concat([LOG, log_frame([("c20", REC, 1, "exp-1", "ghost")])])
    got = arm_stats(extra, exp)
    # c4's "purchase" no longer converts; the logged holdout and ghost arms are kept
    assert got.rows() == [("control", 2, 1), ("t1", 4, 2), (HOLDOUT, 1, 1), ("ghost", 1, 0)]
    empty = arm_stats(LOG.head(0), exp)
    assert empty.rows() == [("control", 0, 0), ("t1", 0, 0)]


def test_same_instant_exposures_go_to_the_smallest_variant_key() -> None:
    log = log_frame([("c1", REC, 1, "exp-1", "t1"), ("c1", REC, 1, "exp-1", "control")])
    assert arm_stats(log, EXPERIMENT).rows()[:2] == [("control", 1, 0), ("t1", 0, 0)]


# -- the store path --------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "nextbest.duckdb", pepper="test-pepper")
    s.tenants.create("acme")
    s.tenants.create("globex")
    yield s
    s.close()


def random_log(seed: int, n_rows: int = 3_000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    customers = np.array([f"c{i}" for i in range(300)])
    outcomes = np.array([REC, REC, REC, "conversion", "purchase", "click", "impression"])
    variants = np.array(["control", "t1", HOLDOUT, "ghost", None], dtype=object)
    outcome = outcomes[rng.integers(0, len(outcomes), n_rows)]
    tagged = (outcome == REC) & (rng.random(n_rows) < 0.9)
    return pl.DataFrame(
        {
            "id": [f"r{seed}-{i}" for i in range(n_rows)],
            "customer_id": customers[rng.integers(0, len(customers), n_rows)],
            "outcome": outcome,
            # whole minutes over two days: plenty of exact ties
            "ts": [T0 + timedelta(minutes=int(m)) for m in rng.integers(0, 2880, n_rows)],
            "experiment_key": np.where(tagged, rng.choice(["exp-1", "exp-1", "exp-2"], n_rows),
                                       None).tolist(),
            "variant": np.where(tagged, variants[rng.integers(0, len(variants), n_rows)],
                                None).tolist(),
        },
        schema={k: LOG_SCHEMA[k] for k in
                ("id", "customer_id", "outcome", "ts", "experiment_key", "variant")},
    )


def test_arm_stats_sql_equals_polars_on_the_same_log(store: Store) -> None:
    store.interactions.append("acme", LOG)
    store.interactions.append("globex", log_frame([("c1", REC, 0, "exp-1", "t1")]))
    assert_frame_equal(arm_stats_sql(store, "acme", EXPERIMENT), EXPECTED)
    for seed in range(3):
        log = random_log(seed)
        store.interactions.append("globex", log)
    full = pl.concat([log_frame([("c1", REC, 0, "exp-1", "t1")])]
                     + [random_log(seed) for seed in range(3)])
    assert_frame_equal(arm_stats_sql(store, "globex", EXPERIMENT), arm_stats(full, EXPERIMENT))
    assert arm_stats(full, EXPERIMENT)["n"].sum() > 200  # the random log exercises something


def test_results_and_report_from_the_store(store: Store) -> None:
    store.experiments.create("acme", EXPERIMENT)
    store.interactions.append("acme", LOG)
    res = results_for(store, "acme", "exp-1")
    assert [(a.variant, a.n, a.conversions) for a in res.arms] == EXPECTED.rows()
    console = Console(record=True, width=200)
    console.print(report_for(store, "acme", "exp-1"))
    assert "Banner test" in console.export_text()
    with pytest.raises(NotFoundError):
        results_for(store, "acme", "nope")
    with pytest.raises(NotFoundError):
        results_for(store, "globex", "exp-1")


def test_utc_aware_timestamps_are_accepted(store: Store) -> None:
    aware = LOG.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    store.interactions.append("acme", aware)
    # the store keeps naive UTC; attribution is unchanged
    assert_frame_equal(arm_stats_sql(store, "acme", EXPERIMENT), EXPECTED)
