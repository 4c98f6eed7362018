"""Interaction summaries and history over HTTP: required customer, counters, filters,
keyset pages, tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Server, error_of

SUMMARIES = "/api/v1/interaction-summaries"
HISTORY = "/api/v1/interaction-history"
RESPOND = "/api/v1/respond"
CUSTOMER = "IX-ONLY-DEMO"  # exists in tenant demo only


@pytest.fixture(scope="module")
def responded(server: Server) -> list[dict[str, Any]]:
    """Three responses of one customer in tenant demo, oldest first."""
    client = server.client()
    out = []
    for i, (creative, outcome, ts, value) in enumerate((
        ("cr_bogo_5_5d_web", "impression", "2026-04-03T10:00:00Z", None),
        ("cr_bogo_5_5d_web", "click", "2026-04-03T10:05:00Z", None),
        ("cr_discount_10_7d_email", "conversion", "2026-04-20T08:00:00Z", 12.5),
    )):
        response = client.post(RESPOND, json={
            "customerId": CUSTOMER, "creativeId": creative, "outcome": outcome,
            "timestamp": ts, "conversionValue": value, "idempotencyKey": f"ix-{i}"})
        assert response.status_code == 201, response.text
        out.append(response.json())
    return out


def test_summaries_need_a_customer(server: Server) -> None:
    error = error_of(server.client().get(SUMMARIES), 400, "VALIDATION_ERROR")
    assert error["message"] == "customerId is required"
    assert error["details"][0]["field"] == "customerId"


def test_summaries_count_per_offer_and_period(
    server: Server, responded: list[dict[str, Any]]
) -> None:
    client = server.client()
    body = client.get(SUMMARIES, params={"customerId": CUSTOMER}).json()
    rows = body["data"]
    assert body["total"] == len(rows) and body["limit"] == 200
    periods = [r["periodType"] for r in rows]
    assert periods == sorted(periods)  # periodType asc (alltime, daily, monthly, weekly)
    alltime = {r["offerId"]: r for r in rows if r["periodType"] == "alltime"}
    bogo = alltime["off_bogo_5_5d"]
    assert (bogo["impressions"], bogo["positive"], bogo["converts"]) == (1, 1, 0)
    assert bogo["lastContactAt"] == "2026-04-03T10:05:00.000Z"
    assert bogo["lastOutcomeKey"] == "click"
    discount = alltime["off_discount_10_7d"]
    assert (discount["converts"], discount["totalValue"]) == (1, 12.5)
    for key in ("impressions", "positive", "negative", "neutral", "converts", "totalValue",
                "lastContactAt", "customerId", "periodKey"):
        assert key in bogo

    daily = client.get(SUMMARIES, params={"customerId": CUSTOMER, "periodType": "daily",
                                          "offerId": "off_bogo_5_5d"}).json()["data"]
    assert [(r["periodKey"], r["offerId"]) for r in daily] == [("2026-04-03", "off_bogo_5_5d")]
    by_channel = client.get(SUMMARIES, params={"customerId": CUSTOMER, "level": "channel",
                                               "periodType": "alltime"}).json()["data"]
    assert {r["channelId"] for r in by_channel} == {"ch_web", "ch_email"}
    assert len(client.get(SUMMARIES, params={"customerId": CUSTOMER, "limit": 2}).json()
               ["data"]) == 2
    for bad, field in (({"limit": 201}, "limit"), ({"periodType": "hourly"}, "periodType"),
                       ({"level": "galaxy"}, "level")):
        error = error_of(client.get(SUMMARIES, params={"customerId": CUSTOMER, **bad}), 400,
                         "VALIDATION_ERROR")
        assert error["details"][0]["field"] == field


def test_history_pages_newest_first_with_filters(
    server: Server, responded: list[dict[str, Any]]
) -> None:
    client = server.client()
    first = client.get(HISTORY, params={"customerId": CUSTOMER, "limit": 2}).json()
    assert [r["id"] for r in first["data"]] == [responded[2]["interactionId"],
                                                responded[1]["interactionId"]]
    assert first["pagination"]["hasMore"] is True and first["pagination"]["total"] == 3
    rest = client.get(HISTORY, params={"customerId": CUSTOMER, "limit": 2,
                                       "cursor": first["pagination"]["nextCursor"]}).json()
    assert [r["id"] for r in rest["data"]] == [responded[0]["interactionId"]]
    assert rest["pagination"]["hasMore"] is False

    row = first["data"][0]
    assert row["customerId"] == CUSTOMER and row["tenantId"] == "demo"
    assert row["offer"]["id"] == "off_discount_10_7d" and row["creative"]["channel"]["id"]
    assert {"experimentKey", "variant", "interactionType", "outcomeTypeKey"} <= set(row)

    clicks = client.get(HISTORY, params={"customerId": CUSTOMER, "type": "click"}).json()
    assert [r["outcomeTypeKey"] for r in clicks["data"]] == ["click"]
    impressions = client.get(HISTORY, params={"customerId": CUSTOMER,
                                              "type": "impression"}).json()["data"]
    assert [r["interactionType"] for r in impressions] == ["impression"]
    by_alias = client.get(HISTORY, params={"customerId": CUSTOMER,
                                           "actionId": "off_bogo_5_5d"}).json()["data"]
    assert {r["offerId"] for r in by_alias} == {"off_bogo_5_5d"} and len(by_alias) == 2
    treatment = client.get(HISTORY, params={"treatmentId": "cr_discount_10_7d_email",
                                            "customerId": CUSTOMER}).json()["data"]
    assert [r["id"] for r in treatment] == [responded[2]["interactionId"]]
    error = error_of(client.get(HISTORY, params={"limit": 101}), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "limit"


def test_reads_are_tenant_isolated(server: Server, responded: list[dict[str, Any]]) -> None:
    other = server.client("other")
    assert other.get(SUMMARIES, params={"customerId": CUSTOMER}).json()["data"] == []
    page = other.get(HISTORY, params={"customerId": CUSTOMER}).json()
    assert page["data"] == [] and page["pagination"]["total"] == 0
    everything = other.get(HISTORY, params={"limit": 100}).json()["data"]
    assert everything and all(r["tenantId"] == "other" for r in everything)
    assert CUSTOMER not in {r["customerId"] for r in everything}
