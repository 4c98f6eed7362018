"""Behavioural metrics over HTTP: CRUD and validation, realtime values in decisions (a
``metric_condition`` rule takes effect on the next recommend), parity with the batch refresh.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.runtime import ServingConfig
from api.state import StateConfig
from engine.store.metric_values import read_metric_values
from pipelines.metrics import refresh
from tests.api.conftest import Pack, Server, error_of, serve

METRICS = "/api/v1/behavioral-metrics"
RECOMMEND = "/api/v1/recommend"
RESPOND = "/api/v1/respond"


def metric(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "aggregateFunction": "count", "sourceField": "click",
            "windowDays": 7, "computeMode": "realtime", **fields}


def test_metric_definitions_crud(server: Server) -> None:
    client = server.client()
    created = client.post(METRICS, json=metric("crud_clicks_7d", description="clicks"))
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["id"].startswith("met_") and doc["version"] == 1 and doc["status"] == "active"

    listed = client.get(METRICS, params={"limit": 100}).json()
    assert set(listed) == {"data", "total", "hasMore", "pagination"}
    mine = next(d for d in listed["data"] if d["id"] == doc["id"])
    assert mine["_count"] == {"values": 0}  # no batch refresh yet
    assert listed["total"] == listed["pagination"]["total"] >= 1

    assert client.get(f"{METRICS}/{doc['id']}").json()["name"] == "crud_clicks_7d"
    put = client.put(f"{METRICS}/{doc['id']}", json={"windowDays": 14})
    assert put.status_code == 200 and put.json()["windowDays"] == 14
    assert put.json()["version"] == 2
    patch = client.patch(f"{METRICS}/{doc['id']}", json={"status": "paused"})
    assert patch.json()["status"] == "paused" and patch.json()["windowDays"] == 14
    by_body = client.put(METRICS, json={"id": doc["id"], "status": "active"})
    assert by_body.status_code == 200 and by_body.json()["status"] == "active"

    other = server.client("other").get(f"{METRICS}/{doc['id']}")
    error_of(other, 404, "NOT_FOUND")  # tenant-isolated
    assert client.delete(f"{METRICS}/{doc['id']}").status_code == 204
    error_of(client.get(f"{METRICS}/{doc['id']}"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"filterConditions": {"field": "colour", "operator": "eq", "value": "red"}},
         "filterConditions.field"),
        ({"filterConditions": {"and": [{"field": "offerId", "operator": "eq", "value": "x"},
                                       {"field": "nope", "operator": "eq", "value": 1}]}},
         "filterConditions.and.1.field"),
        ({"aggregateFunction": "avg"}, "status"),  # realtime metrics: count and sum only
        ({"windowDays": 0}, "windowDays"),
        ({"windowDays": 366}, "windowDays"),
        ({"groupByDimensions": ["offerId", "channelId", "creativeId"]}, "groupByDimensions"),
    ],
)
def test_invalid_definitions_are_400_naming_the_field(
    server: Server, fields: dict[str, Any], field: str
) -> None:
    response = server.client().post(METRICS, json=metric("invalid_metric", **fields))
    error = error_of(response, 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == field, error


def test_a_tenant_has_at_most_twenty_metrics(server: Server) -> None:
    client = server.client("bare")
    for i in range(20):
        assert client.post(METRICS, json=metric(f"m{i}")).status_code == 201
        if i == 0:
            error_of(client.post(METRICS, json=metric("m0")), 409, "CONFLICT")  # unique names
    error = error_of(client.post(METRICS, json=metric("m20")), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "behavioralMetrics" and "20" in error["message"]


OFFER = "off_bogo_5_7d"  # in the top 5 of a customer without history


def offers(server: Server, customer: str, **extra: Any) -> dict[str, Any]:
    response = server.client().post(RECOMMEND, json={
        "customerId": customer, "channel": "email", "limit": 10, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_two_dismissals_in_30_days_suppress_the_offer_on_the_next_recommend(
    server: Server,
) -> None:
    """A qualification ``metric_condition`` rule on a realtime metric: the offer passes while
    the customer dismissed it fewer than two times in 30 days."""
    client = server.client()
    created = client.post(METRICS, json=metric(
        "bogo_dismissals_30d", sourceField="dismiss", windowDays=30,
        filterConditions={"field": "offerId", "operator": "eq", "value": OFFER}))
    assert created.status_code == 201, created.text
    server.runtime.store.qualification_rules.create("demo", {
        "name": "Suppress after 2 dismissals", "scope": "offer", "scopeId": OFFER,
        "ruleType": "metric_condition", "stage": "eligibility", "priority": 95,
        "config": {"metric": "bogo_dismissals_30d", "operator": "lt", "value": 2},
    })
    customer = "DISMISS-1"
    first = offers(server, customer)
    assert OFFER in {d["offerId"] for d in first["decisions"]}

    def dismiss(n: int) -> None:
        response = client.post(RESPOND, json={
            "customerId": customer, "offerId": OFFER, "outcome": "dismiss",
            "idempotencyKey": f"dismiss-{customer}-{n}"})
        assert response.status_code == 201, response.text

    dismiss(1)
    assert OFFER in {d["offerId"] for d in offers(server, customer)["decisions"]}
    values = client.get(f"{METRICS}/values", params={"customerId": customer}).json()
    assert values["columns"]["metrics.bogo_dismissals_30d"] == 1.0
    dismiss(2)
    after = offers(server, customer, debug=True)
    kept = {d["offerId"] for d in after["decisions"]}
    assert OFFER not in kept and kept  # only that offer goes
    trace = client.get(f"/api/v1/decision-traces/{after['recommendationId']}").json()
    reasons = [r for r in trace["qualificationResults"]
               if r.get("offerId") == OFFER and not r.get("passed")]
    assert any("bogo_dismissals_30d" in (r.get("reason") or "") for r in reasons), reasons
    # another customer is unaffected
    assert OFFER in {d["offerId"] for d in offers(server, "DISMISS-2")["decisions"]}


class WallClock:
    """The serving wall clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def set(self, now: datetime) -> None:
        with self._lock:
            self.now = now


@pytest.fixture(scope="module")
def clocked(pack: Pack, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Server, WallClock]]:
    """A server whose decisions run at an injected time, with a 3-day in-memory history."""
    clock = WallClock(datetime.now(UTC).replace(microsecond=0))
    config = ServingConfig(wall_clock=clock,
                           state=StateConfig(history_window=timedelta(days=3)))
    for server in serve(pack, tmp_path_factory.mktemp("clocked"), config=config):
        yield server, clock


PARITY_METRICS = [
    metric("p_clicks_7d"),
    metric("p_impressions_all", sourceField="impressions", windowDays=None),
    metric("p_value_30d_by_offer", aggregateFunction="sum", sourceField="totalValue",
           windowDays=30, groupByDimensions=["offerId"], computeMode="batch"),
    metric("p_ctr_60d", aggregateFunction="ratio", sourceField="click",
           denominatorField="impressions", windowDays=60, computeMode="batch"),
    metric("p_avg_conversion_20d", aggregateFunction="avg", sourceField="conversion",
           windowDays=20, computeMode="batch"),
    metric("p_email_dismiss_14d", sourceField="dismiss", windowDays=14,
           filterConditions={"field": "channelId", "operator": "eq", "value": "ch_email"}),
]


def test_realtime_values_equal_the_batch_refresh_at_the_same_as_of(
    clocked: tuple[Server, WallClock],
) -> None:
    server, clock = clocked
    client = server.client()
    for doc in PARITY_METRICS:
        assert client.post(METRICS, json=doc).status_code == 201
    customers = [f"SBX-{i:06d}" for i in range(1, 41)]
    start = clock()
    # responds at chosen times, some far behind the 3-day in-memory window
    for i, (customer, days) in enumerate(zip(customers[:12], [0, 1, 2, 5, 10, 19, 25, 29, 40,
                                                              59, 70, 120], strict=True)):
        for outcome, offset in (("click", 0), ("dismiss", 1), ("conversion", 2)):
            response = client.post(RESPOND, json={
                "customerId": customer, "creativeId": "cr_bogo_5_5d_email",
                "outcome": outcome, "idempotencyKey": f"parity-{i}-{outcome}",
                "timestamp": (start - timedelta(days=days, minutes=offset)).isoformat(),
                "conversionValue": 3.5 + i if outcome == "conversion" else None})
            assert response.status_code == 201, response.text
    for at in (start + timedelta(minutes=5), start + timedelta(days=6, hours=3)):
        clock.set(at)
        served = {c: client.get(f"{METRICS}/values", params={"customerId": c}).json()
                  for c in customers}
        assert server.runtime.tenants["demo"].history.window is None  # all-time metric
        refresh(server.runtime.store, "demo", as_of=at, progress=False)
        batch = read_metric_values(server.runtime.store, "demo", customer_ids=customers,
                                   as_of=at)
        expected = {(c, m, g): v for m, c, g, v in batch.iter_rows()}
        got = {(c, r["metric"], r["groupKey"]): r["value"]
               for c, body in served.items() for r in body["values"]}
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert (got[key] is None) if value is None else (
                got[key] == pytest.approx(value, rel=1e-12)), key
        assert any(m == "p_impressions_all" for _, m, _ in expected)
        assert any(m == "p_value_30d_by_offer" for _, m, _ in expected)


def test_a_recommend_reads_metric_columns_at_the_request_time(
    clocked: tuple[Server, WallClock],
) -> None:
    """The served value (``metrics.<name>``) is what a rule compares: a policy blocking when
    a customer's all-time impression count is >= 0 blocks everything; one comparing an
    impossible value blocks nothing."""
    server, _ = clocked
    client = server.client()
    body = {"customerId": "SBX-000003", "channel": "email", "limit": 10}
    before = client.post(RECOMMEND, json=body).json()
    assert before["count"] > 0
    policy = server.runtime.store.contact_policies.create("demo", {
        "name": "Block on impressions", "scope": "global", "ruleType": "metric_condition",
        "config": {"metric": "p_impressions_all", "operator": "gte", "value": 0},
        "priority": 99,
    })
    try:
        blocked = client.post(RECOMMEND, json=body).json()
        assert blocked["count"] == 0
    finally:
        server.runtime.store.contact_policies.delete("demo", policy["id"])
    assert client.post(RECOMMEND, json=body).json()["count"] == before["count"]
