"""Store benchmark: generate and load 1,000,000 customers and 10,000,000 interactions, and
load the catalog snapshot. Each phase runs in a fresh subprocess so its peak memory is its own.

    .venv/bin/pytest tests/benchmarks/test_store_bench.py -m benchmark -s

Baselines measured in the same run: a bare DuckDB ``CREATE TABLE AS`` of the same Arrow data
(the floor any loader pays) and, for the snapshot, a cached read.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CUSTOMERS = 1_000_000
PER_CUSTOMER = 10.0

PHASE = textwrap.dedent(
    """
    import json, sys, time
    from datetime import UTC, datetime
    import duckdb
    from tests.benchmarks.conftest import peak_rss_mb, median_seconds
    from pipelines import starbucks
    from engine.store import Store

    phase, workdir, n, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    as_of = datetime(2026, 6, 1, tzinfo=UTC)
    out = {}
    t = time.perf_counter()
    docs = starbucks.load_pack_documents()
    people = starbucks.generate_customers(n, seed=42)
    out["generate_customers_s"] = time.perf_counter() - t
    if phase in ("load", "baseline"):
        t = time.perf_counter()
        history = starbucks.generate_history(people, docs, days=90, as_of=as_of, seed=42,
                                             per_customer=per)
        out["generate_history_s"] = time.perf_counter() - t
        out["history_rows"] = history.height
    if phase == "load":
        store = Store(workdir + "/bench.duckdb", pepper="bench")
        store.tenants.create("bench")
        t = time.perf_counter()
        store.customers.load("bench", "starbucks_customers", people)
        out["load_customers_s"] = time.perf_counter() - t
        t = time.perf_counter()
        store.interactions.append("bench", history)
        out["load_history_s"] = time.perf_counter() - t
        store.close()
    elif phase == "baseline":
        con = duckdb.connect(workdir + "/baseline.duckdb")
        c_arrow, h_arrow = people.to_arrow(), history.to_arrow()
        t = time.perf_counter()
        con.register("c", c_arrow)
        con.execute("CREATE TABLE customers AS SELECT * FROM c")
        out["load_customers_s"] = time.perf_counter() - t
        t = time.perf_counter()
        con.register("h", h_arrow)
        con.execute("CREATE TABLE history AS SELECT * FROM h")
        out["load_history_s"] = time.perf_counter() - t
        con.close()
    elif phase == "snapshot":
        from pipelines.seed import seed_starbucks
        store = Store(workdir + "/snap.duckdb", pepper="bench")
        seed_starbucks(store, "bench", customers=100, as_of=as_of)
        def cold():
            store._forget_version("bench")
            store._snapshots.clear()
            store.load_catalog("bench")
        out["snapshot_cold_s"] = median_seconds(cold, 30)
        out["snapshot_cached_s"] = median_seconds(lambda: store.load_catalog("bench"), 1000)
        store.close()
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))
    """
)


def run_phase(phase: str, workdir: Path, n: int = CUSTOMERS) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PHASE, phase, str(workdir), str(n), str(PER_CUSTOMER)],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.benchmark
def test_generate_and_load_a_million_customers(tmp_path: Path) -> None:
    load = run_phase("load", tmp_path)
    base = run_phase("baseline", tmp_path)
    snap = run_phase("snapshot", tmp_path, n=100)
    rows = [
        ("generate 1M customers", load["generate_customers_s"], None),
        (f"generate {load['history_rows']:,} interactions", load["generate_history_s"], None),
        ("load customers into the store", load["load_customers_s"], base["load_customers_s"]),
        ("append interactions to the log", load["load_history_s"], base["load_history_s"]),
        ("catalog snapshot (cold vs cached)", snap["snapshot_cold_s"], snap["snapshot_cached_s"]),
    ]
    print()
    print(f"{'phase':<40}{'nextbest s':>12}{'baseline s':>14}{'ratio':>12}")
    for name, ours, baseline in rows:
        if baseline is None:
            print(f"{name:<40}{ours:>12.4f}{'-':>14}{'-':>12}")
        else:
            print(f"{name:<40}{ours:>12.4f}{baseline:>14.7f}{ours / baseline:>12.1f}")
    print(
        f"peak RSS: load {load['peak_rss_mb']:.0f} MiB, bare DuckDB {base['peak_rss_mb']:.0f} "
        f"MiB, snapshot {snap['peak_rss_mb']:.0f} MiB"
    )
    print("baselines: generation = same generator in the baseline process; load = bare DuckDB "
          "CREATE TABLE AS over the same Arrow data; snapshot = cached read")
    assert load["history_rows"] > 0
