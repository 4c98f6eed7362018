"""A batch run killed with SIGKILL mid-run resumes after its last finished chunk.

The run is a real subprocess (it owns the DuckDB file while it runs); the test kills it once
the manifest lists a few chunks, reruns the same run id, and compares the result with an
uninterrupted run: no duplicate and no missing rows, and every decision logged exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from engine.store import Store
from pipelines.batch_score import read_output, run
from pipelines.seed import seed_starbucks

ROOT = Path(__file__).resolve().parents[2]
TENANT = "demo"
FLOW = "starbucks-decision-pipeline"
AS_OF = datetime(2026, 5, 1, 15, 0, tzinfo=UTC)
CUSTOMERS = 3000
CHUNK = 30

SCRIPT = """
import sys
from datetime import datetime
from engine.store import Store
from pipelines.batch_score import run
path, out, run_id, as_of, chunk = sys.argv[1:6]
store = Store(path, pepper="test")
run(store=store, tenant_id="demo", flow_key="starbucks-decision-pipeline", out=out,
    run_id=run_id, as_of=datetime.fromisoformat(as_of), chunk_size=int(chunk),
    log_decisions=True, progress=False)
store.close()
"""


def chunks_done(manifest: Path) -> int:
    try:
        return len(json.loads(manifest.read_bytes())["chunks"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    db = tmp_path / "nextbest.duckdb"
    store = Store(db, pepper="test")
    seed_starbucks(store, TENANT, customers=CUSTOMERS, as_of=AS_OF)
    store.close()
    out = tmp_path / "runs"
    manifest = out / "killed" / "manifest.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(db), str(out), "killed", AS_OF.isoformat(),
         str(CHUNK)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 120
    try:
        while chunks_done(manifest) < 3:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run did not finish a chunk in time"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    state = json.loads(manifest.read_bytes())
    done = len(state["chunks"])
    assert 3 <= done < CUSTOMERS // CHUNK and not state["complete"]

    store = Store(db, pepper="test")
    try:
        resumed = run(store=store, tenant_id=TENANT, flow_key=FLOW, out=out, run_id="killed",
                      as_of=AS_OF, chunk_size=CHUNK, log_decisions=True, progress=False)
        assert resumed.resumed_chunks == done
        assert resumed.chunks == CUSTOMERS // CHUNK and resumed.customers == CUSTOMERS
        assert resumed.customers_this_run == CUSTOMERS - done * CHUNK
        assert not list((out / "killed").glob("*.tmp"))
        got = read_output(resumed.directory)

        # no duplicates, no gaps: chunk i+1 starts after chunk i ends
        chunks = json.loads(manifest.read_bytes())["chunks"]
        assert [c["index"] for c in chunks] == list(range(len(chunks)))
        for a, b in zip(chunks, chunks[1:], strict=False):
            assert a["lastCustomer"] < b["firstCustomer"]
        assert not got.select(pl.struct("customer_id", "rank").is_duplicated().any()).item()

        clean = run(store=store, tenant_id=TENANT, flow_key=FLOW, out=out, run_id="clean",
                    as_of=AS_OF, chunk_size=CHUNK, progress=False)
        want = read_output(clean.directory)
        assert want.height > CUSTOMERS
        assert_frame_equal(got.drop("run_id"), want.drop("run_id"))

        # every decision was logged exactly once, even the chunk the kill interrupted
        logged = store.db.cursor().sql(
            "SELECT customer_id, rank, offer_id FROM interactions WHERE tenant_id = ? "
            "AND outcome = 'recommendation' AND starts_with(recommendation_id, 'rec_killed:')",
            params=[TENANT]).pl()
        assert logged.height == got.height
        assert_frame_equal(logged.sort("customer_id", "rank"),
                           got.select("customer_id", "rank", "offer_id"), check_dtypes=False)
    finally:
        store.close()
