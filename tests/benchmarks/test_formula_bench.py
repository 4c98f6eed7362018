"""Formula benchmark: compile time, Polars throughput, and the speed-up over a Python
row-at-a-time interpreter (tests/engine/formula/reference.py), all measured in one run.

    .venv/bin/pytest tests/benchmarks/test_formula_bench.py -m benchmark -s
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import datetime

import polars as pl
import pytest

from engine.formula import compile
from tests.engine.formula.reference import Reference

ROWS = 1_000_000
SUBSAMPLE = 20_000
AS_OF = datetime(2024, 6, 1)
FORMULA = (
    "round(base_rate * (1 - coalesce(customer.loyalty_score, 0) * 0.01)"
    ' + (attributes.tier == "gold" ? 0.15 : 0.10), 2)'
)


def candidates(rows: int) -> pl.DataFrame:
    """Deterministic pseudo-random candidate rows (hash of the row number), ~10% nulls."""
    index = pl.int_range(rows, dtype=pl.UInt64)
    score = (index.hash(1) % 100).cast(pl.Int64)
    return pl.select(
        base_rate=(index.hash(2) % 5000).cast(pl.Float64) / 100,
        **{"customer.loyalty_score": pl.when(score < 90).then(score)},
        **{"attributes.tier": pl.when(index.hash(3) % 3 == 0).then(pl.lit("gold"))
                              .otherwise(pl.lit("silver"))},
    )  # fmt: skip


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@pytest.mark.benchmark
def test_formula_benchmark() -> None:
    frame = candidates(ROWS)
    schema = frame.schema

    def cold_compile() -> None:
        compile.cache_clear()  # type: ignore[attr-defined]
        compile(FORMULA)

    compile_cold = median_seconds(cold_compile, 2000)
    compile_warm = median_seconds(lambda: compile(FORMULA), 2000)
    formula = compile(FORMULA)
    to_expr = median_seconds(lambda: formula.to_expr(schema, as_of=AS_OF), 500)
    expr = formula.to_expr(schema, as_of=AS_OF).alias("value")
    frame.select(expr)  # warm-up
    polars_seconds = median_seconds(lambda: frame.select(expr), 7)

    sample = frame.head(SUBSAMPLE)
    rows = sample.to_dicts()
    reference = Reference(formula.ast, schema, AS_OF)
    started = time.perf_counter()
    expected = [reference.evaluate(row) for row in rows]
    reference_seconds = (time.perf_counter() - started) * ROWS / SUBSAMPLE
    assert sample.select(expr)["value"].to_list() == expected

    ratio = reference_seconds / polars_seconds
    table = [
        ("formula", FORMULA),
        ("compile, cold (median of 2000)", f"{compile_cold * 1e6:10.1f} µs"),
        ("compile, cached (median of 2000)", f"{compile_warm * 1e6:10.2f} µs"),
        ("to_expr with schema (median of 500)", f"{to_expr * 1e6:10.1f} µs"),
        (f"Polars, {ROWS:,} rows (median of 7)", f"{polars_seconds * 1e3:10.1f} ms"),
        ("Polars throughput", f"{ROWS / polars_seconds / 1e6:10.1f} M rows/s"),
        (f"reference, {SUBSAMPLE:,} rows -> {ROWS:,}", f"{reference_seconds * 1e3:10.0f} ms"),
        ("speed-up over reference", f"{ratio:10.0f} x"),
    ]
    width = max(len(name) for name, _ in table)
    print("\n" + "\n".join(f"  {name:<{width}}  {value}" for name, value in table))
    assert ratio > 50
