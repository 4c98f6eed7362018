"""Batch == realtime: for a sample of customers, a batch run's rows are what
``POST /api/v1/recommend`` answers for the same state and as-of.

The API decides at its own wall clock, so the test brackets it: two batch runs at
``t0`` (taken before any request) and ``t0 + WINDOW`` are made first (a batch run is
read-only, so the state is the same), the requests all happen inside that window, and the
comparison covers the customers whose batch answer is the same at both ends (contact
policy windows move with the clock; a customer whose cooldown ends inside the window
could legitimately get either answer). Each customer is requested once, because each
Recommend logs impressions that change that customer's next answer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from engine.decide import DecisionRequest
from engine.store import Store
from pipelines.batch_score import read_output, run
from pipelines.seed import seed_starbucks
from tests.api.conftest import PEPPER, Pack, serve

TENANT = "demo"
FLOW = "starbucks-decision-pipeline"
WINDOW = timedelta(seconds=180)
SAMPLE = 40
COLUMNS = ("rank", "offer_id", "creative_id", "channel_id", "placement_id", "score",
           "personalization")


@dataclass
class Served:
    client: httpx.Client
    store: Store


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real app under uvicorn (the API tests' server), over a Starbucks pack whose
    history runs up to the current hour, so the 24 h policies see recent contacts."""
    base = tmp_path_factory.mktemp("parity")
    path = base / "template.duckdb"
    store = Store(path, pepper=PEPPER)
    seed_starbucks(store, TENANT, customers=300, history_per_customer=60)
    _, key = store.api_keys.create(TENANT, name="parity")
    store.close()
    for server in serve(Pack(path, {TENANT: key}), base / "server"):
        # the batch runs read the server's own store: one process owns the DuckDB file
        yield Served(server.client(TENANT), server.runtime.store)


def batch(store: Store, out: Path, run_id: str, as_of: datetime, request: DecisionRequest,
          customers: Path | None = None) -> dict[str, list[tuple[Any, ...]]]:
    summary = run(store=store, tenant_id=TENANT, flow_key=FLOW, out=out, run_id=run_id,
                  as_of=as_of, chunk_size=16, request=request, customers=customers,
                  progress=False)
    frame = read_output(summary.directory)
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for row in frame.iter_rows(named=True):
        rows.setdefault(row["customer_id"], []).append(
            tuple(json.loads(row[c]) if c == "personalization" else row[c] for c in COLUMNS))
    return rows


def served_rows(decisions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(d["rank"], d["offerId"], d["creativeId"], d["channelId"], d["placementId"],
             d["score"], d["personalization"]) for d in decisions]


@pytest.mark.parametrize(
    ("request_body", "template"),
    [({}, DecisionRequest()),
     ({"channel": "email", "limit": 3}, DecisionRequest(channel="email", limit=3))],
    ids=["default", "email-top3"],
)
def test_batch_equals_recommend(served: Served, tmp_path: Path, request_body: dict[str, Any],
                                template: DecisionRequest) -> None:
    store = served.store
    people = store.customers.fetch(TENANT).get_column("customer_id").to_list()
    requested = {r[0] for r in store.db.cursor().execute(
        "SELECT DISTINCT customer_id FROM interactions WHERE tenant_id = ? "
        "AND outcome = 'recommendation'", [TENANT]).fetchall()}
    sample = random.Random(len(request_body)).sample(
        [p for p in people if p not in requested], SAMPLE)
    sample.append("SBX-UNKNOWN")  # not in the customer table: decided with null attributes
    ids = tmp_path / "sample.parquet"
    pl.DataFrame({"customer_id": sample}).write_parquet(ids)

    t0 = datetime.now(UTC)
    early = batch(store, tmp_path, "early", t0, template, ids)
    late = batch(store, tmp_path, "late", t0 + WINDOW, template, ids)
    table = batch(store, tmp_path, "table", t0, template)  # the whole customer table
    assert {c: r for c, r in table.items() if c in early} == \
        {c: r for c, r in early.items() if c != "SBX-UNKNOWN"}
    answers = {}
    for customer in sample:
        response = served.client.post(
            "/api/v1/recommend",
            json={"customerId": customer, "decisionFlowKey": FLOW, **request_body})
        assert response.status_code == 200, response.text
        answers[customer] = served_rows(response.json()["decisions"])
    assert datetime.now(UTC) < t0 + WINDOW, "the requests took longer than the window"

    stable = [c for c in sample if early.get(c, []) == late.get(c, [])]
    assert len(stable) >= 0.9 * len(sample)
    compared = 0
    for customer in stable:
        assert answers[customer] == early.get(customer, []), customer
        compared += len(answers[customer])
    assert compared >= 2 * SAMPLE  # most sampled customers get several offers


def test_batch_is_decided_with_the_served_history(served: Served, tmp_path: Path) -> None:
    """After Recommend logged a customer's impressions (implicit channels), a batch run sees
    them exactly as the API's next answer does."""
    store = served.store
    cid = "SBX-000007"
    first = served.client.post("/api/v1/recommend",
                               json={"customerId": cid, "decisionFlowKey": FLOW})
    assert first.status_code == 200
    impressions = store.db.cursor().execute(
        "SELECT count(*) FROM interactions WHERE tenant_id = ? AND customer_id = ? "
        "AND outcome = 'impression' AND recommendation_id = ?",
        [TENANT, cid, first.json()["recommendationId"]]).fetchall()[0][0]
    if not impressions:
        pytest.skip("the pack's channels record no implicit impressions")
    pl.DataFrame({"customer_id": [cid]}).write_parquet(tmp_path / "one.parquet")
    as_of = datetime.now(UTC)
    summary = run(store=store, tenant_id=TENANT, flow_key=FLOW, out=tmp_path, run_id="one",
                  as_of=as_of, customers=tmp_path / "one.parquet", progress=False)
    rows = [tuple(json.loads(r[c]) if c == "personalization" else r[c] for c in COLUMNS)
            for r in read_output(summary.directory).iter_rows(named=True)]
    again = served.client.post("/api/v1/recommend",
                               json={"customerId": cid, "decisionFlowKey": FLOW})
    assert again.status_code == 200
    assert served_rows(again.json()["decisions"]) == rows
    assert rows != served_rows(first.json()["decisions"])  # the cooldown moved the answer
