"""Experiment benchmarks: vectorized assignment and arm statistics over a large log.

    .venv/bin/pytest tests/benchmarks/test_experiments_bench.py -m benchmark -s

Baselines in the same run: the scalar assignment in a Python loop (per customer), a bare
Polars ``group_by(customer_id).len()`` over the same log and the same bare group-by in
DuckDB (the floor of any per-customer pass over the log).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.experiments import assign, assign_frame
from engine.store import Store
from pipelines.experiments import analyze, arm_stats, arm_stats_sql

from .conftest import median_seconds

CUSTOMERS = 1_000_000
ROWS = 5_000_000
EXPERIMENT = {
    "key": "bench-exp", "name": "Bench", "holdoutPercent": 10,
    "variants": [{"key": "control", "trafficPercent": 50, "isControl": True},
                 {"key": "t1", "trafficPercent": 25}, {"key": "t2", "trafficPercent": 25}],
}


def synthetic_log(ids: pl.Series, rows: int, seed: int = 1) -> pl.DataFrame:
    """60 % recommendation rows tagged with the customer's arm, the rest responses."""
    rng = np.random.default_rng(seed)
    arms = assign_frame(ids, EXPERIMENT)
    who = rng.integers(0, ids.len(), rows)
    is_rec = rng.random(rows) < 0.6
    start = int(datetime(2026, 1, 1).timestamp()) * 1_000_000
    return pl.DataFrame({
        "id": pl.int_range(rows, eager=True).cast(pl.String),
        "customer_id": ids.gather(who),
        "outcome": np.where(is_rec, "recommendation",
                            np.where(rng.random(rows) < 0.2, "conversion", "click")),
        "ts": pl.Series(start + rng.integers(0, 90 * 86_400, rows) * 1_000_000)
        .cast(pl.Datetime("us")),
        "experiment_key": np.where(is_rec, EXPERIMENT["key"], None),
        "variant": np.where(is_rec, arms["variant"].gather(who).to_numpy(), None),
    })


@pytest.mark.benchmark
def test_experiments_bench(tmp_path: Path) -> None:
    out: dict[str, float | int] = {"customers": CUSTOMERS, "log_rows": ROWS}
    ids = pl.Series("customer_id", [f"SBX-{i:07d}" for i in range(CUSTOMERS)])
    out["assign_frame_s"] = median_seconds(lambda: assign_frame(ids, EXPERIMENT), 3)
    sample = ids.head(20_000).to_list()
    t = time.perf_counter()
    for cid in sample:
        assign(EXPERIMENT, cid)
    out["scalar_assign_us_per_customer"] = (time.perf_counter() - t) / len(sample) * 1e6

    log = synthetic_log(ids, ROWS)
    out["arm_stats_polars_s"] = median_seconds(lambda: arm_stats(log, EXPERIMENT), 3)
    out["baseline_polars_group_by_len_s"] = median_seconds(
        lambda: log.group_by("customer_id").len(), 3)

    store = Store(tmp_path / "bench.duckdb", pepper="bench")
    store.tenants.create("bench")
    store.interactions.append("bench", log)
    out["arm_stats_sql_s"] = median_seconds(lambda: arm_stats_sql(store, "bench", EXPERIMENT), 3)
    out["baseline_duckdb_group_by_count_s"] = median_seconds(
        lambda: store.db.cursor().execute(
            "SELECT customer_id, count(*) FROM interactions WHERE tenant_id = ? "
            "GROUP BY customer_id", ["bench"]).fetchall(), 3)
    sql_arms = arm_stats_sql(store, "bench", EXPERIMENT)
    store.close()

    arms = arm_stats(log, EXPERIMENT)
    out["analyze_ms"] = median_seconds(lambda: analyze(arms, EXPERIMENT), 50) * 1e3
    print("\n" + json.dumps(out, indent=2))
    assert sql_arms.equals(arms)
    assert analyze(arms, EXPERIMENT).srm.mismatch is False
