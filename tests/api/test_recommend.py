"""Recommend on the Starbucks pack: shape, logging, traces, flows, contact policies."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

import httpx

from tests.api.conftest import Server, error_of

RECOMMEND = "/api/v1/recommend"
RESPOND = "/api/v1/respond"
FLOW = "starbucks-decision-pipeline"


def recommend(server: Server, **body: Any) -> dict[str, Any]:
    response = server.client().post(RECOMMEND, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def log_rows(server: Server, recommendation_id: str) -> list[tuple[Any, ...]]:
    return server.sql(
        "SELECT outcome, rank, offer_id, creative_id, channel_id, id FROM interactions "
        "WHERE recommendation_id = ? ORDER BY outcome DESC, rank",
        [recommendation_id],
    )


def test_decisions_are_ranked_complete_and_logged(server: Server) -> None:
    body = recommend(server, customerId="SBX-000042", decisionFlowKey=FLOW, channel="email",
                     limit=3)
    assert set(body) == {"recommendationId", "customerId", "count", "decisions",
                         "controlGroup", "degradedScoring"}
    assert body["customerId"] == "SBX-000042" and body["controlGroup"] is False
    decisions = body["decisions"]
    assert 1 <= body["count"] == len(decisions) <= 3
    assert [d["rank"] for d in decisions] == list(range(1, len(decisions) + 1))
    assert [d["score"] for d in decisions] == sorted((d["score"] for d in decisions),
                                                     reverse=True)
    for d in decisions:
        assert d["recommendationId"] == body["recommendationId"]
        assert d["channelId"] == "ch_email" and d["offerId"].startswith("off_")
        assert d["offerName"] and d["categoryName"] and d["creativeId"]
        assert isinstance(d["content"], dict) and isinstance(d["personalization"], dict)
        assert "{{" not in str(d["content"])
        assert d["mandatory"] is False and d["interactionId"].startswith("ix_")
    rows = log_rows(server, body["recommendationId"])  # email: explicit impressions
    assert [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
        ("recommendation", d["rank"], d["offerId"], d["creativeId"], "ch_email",
         d["interactionId"]) for d in decisions
    ]


def test_implicit_channels_also_log_an_impression_per_decision(server: Server) -> None:
    body = recommend(server, customerId="IMPLICIT-1", channel="web", limit=2)
    rows = log_rows(server, body["recommendationId"])
    assert [(r[0], r[1], r[2]) for r in rows] == [
        *(("recommendation", d["rank"], d["offerId"]) for d in body["decisions"]),
        *(("impression", d["rank"], d["offerId"]) for d in body["decisions"]),
    ]


def test_debug_adds_the_funnel_and_stores_a_trace_under_the_recommendation_id(
    server: Server,
) -> None:
    body = recommend(server, customerId="SBX-000007", channel="email", debug=True)
    meta = body["meta"]
    assert meta["decisionFlowKey"] == FLOW and meta["flowVersion"] == 1
    funnel = meta["funnel"]
    counts = [funnel[k] for k in ("candidateCount", "afterQualification",
                                  "afterContactPolicy", "finalCount")]
    assert all(a >= b for a, b in pairwise(counts)) and counts[-1] == body["count"]
    client = server.client()
    trace = client.get(f"/api/v1/decision-traces/{body['recommendationId']}")
    assert trace.status_code == 200
    doc = trace.json()
    assert doc["id"] == body["recommendationId"] and doc["customerId"] == "SBX-000007"
    assert doc["decisionFlowKey"] == FLOW and doc["funnel"] == funnel
    assert doc["result"]["count"] == body["count"]
    assert "qualificationResults" in doc and "selectedOffers" in doc
    listed = client.get("/api/v1/decision-traces", params={"customerId": "SBX-000007"}).json()
    assert listed["limit"] == 50 and listed["offset"] == 0 and listed["total"] >= 1
    assert body["recommendationId"] in [t["id"] for t in listed["traces"]]
    plain = recommend(server, customerId="SBX-000008", channel="email")
    assert "meta" not in plain
    error_of(client.get(f"/api/v1/decision-traces/{plain['recommendationId']}"), 404,
             "NOT_FOUND")


def test_aliases_behave_like_the_canonical_fields(server: Server) -> None:
    body = recommend(server, customerId="ALIAS-1", channel="email", maxOffers=2, trace=True,
                     blueprintKey=FLOW)
    assert body["count"] <= 2 and body["meta"]["decisionFlowKey"] == FLOW
    by_id = recommend(server, customerId="ALIAS-2", channel="email",
                      decisionFlowId="flow_starbucks")
    assert by_id["count"] >= 1


def test_exclusions_are_respected(server: Server) -> None:
    first = recommend(server, customerId="EXCL-1", channel="email", limit=10)
    offers = [d["offerId"] for d in first["decisions"]]
    creatives = [d["creativeId"] for d in first["decisions"]]
    again = recommend(server, customerId="EXCL-2", channel="email", limit=10,
                      excludeOffers=offers[:2], excludeCreatives=creatives[2:3])
    returned = {d["offerId"] for d in again["decisions"]}
    assert not returned & set(offers[:2])
    assert creatives[2] not in {d["creativeId"] for d in again["decisions"]}


def test_unknown_customer_is_not_an_error_and_unknown_flow_is_404(server: Server) -> None:
    assert recommend(server, customerId="NOBODY-ANYWHERE", channel="email")["count"] >= 1
    error = error_of(server.client().post(RECOMMEND, json={"customerId": "c",
                                                           "decisionFlowKey": "no-such-flow"}),
                     404, "NOT_FOUND")
    assert "no-such-flow" in error["message"]


def test_flows_are_chosen_by_key_and_must_be_runnable(server: Server) -> None:
    adaptive = recommend(server, customerId="SBX-000011", channel="email",
                         decisionFlowKey="propensity-flow", debug=True)
    assert adaptive["meta"]["decisionFlowKey"] == "propensity-flow"
    assert adaptive["count"] >= 1 and all(0 < d["score"] <= 1 for d in adaptive["decisions"])
    default = recommend(server, customerId="SBX-000011", channel="email", debug=True)
    assert default["meta"]["decisionFlowKey"] == FLOW  # the pack's flow is the default
    draft = error_of(server.client().post(RECOMMEND, json={
        "customerId": "c", "decisionFlowKey": "draft-flow"}), 404, "NOT_FOUND")
    assert "draft-flow" in draft["message"] and "draft" in draft["message"]


def test_a_tenant_without_flows_gets_one_base_nba_flow(server: Server) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers("bare"),
                                     timeout=30) as client:
            return list(await asyncio.gather(*(
                client.post(RECOMMEND, json={"customerId": f"B-{i}"}) for i in range(6)
            )))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {200}
    assert all(r.json()["count"] == 0 for r in responses)  # no offers in this tenant
    again = server.client(tenant="bare").post(RECOMMEND, json={"customerId": "B-9", "debug": True})
    assert again.json()["meta"]["decisionFlowKey"] == "base-nba-flow"
    flows = server.sql(
        "SELECT id FROM decision_flows WHERE tenant_id = 'bare' AND deleted_at IS NULL"
    )
    assert len(flows) == 1


def test_a_contact_policy_takes_effect_after_respond(server: Server) -> None:
    """Daily cap of 3 contacts: three impressions recorded through Respond stop the next
    recommendation (explicit email channel: recommend itself logs no impression)."""
    client = server.client()
    first = recommend(server, customerId="LOOP-1", channel="email", limit=3, debug=True)
    assert first["count"] == 3
    for rank in (1, 2, 3):
        shown = client.post(RESPOND, json={
            "customerId": "LOOP-1", "recommendationId": first["recommendationId"],
            "rank": rank, "outcome": "impression", "idempotencyKey": f"loop-1-imp-{rank}",
        })
        assert shown.status_code == 201, shown.text
    capped = recommend(server, customerId="LOOP-1", channel="email", debug=True)
    assert capped["count"] == 0
    assert capped["meta"]["funnel"]["afterContactPolicy"] == 0
    trace = client.get(f"/api/v1/decision-traces/{capped['recommendationId']}").json()
    reasons = {r.get("reason") for r in trace["contactPolicyResults"]}
    assert any("frequency_cap" in (reason or "") for reason in reasons)
    assert recommend(server, customerId="LOOP-2", channel="email")["count"] >= 1


def test_implicit_impressions_count_towards_the_cap(server: Server) -> None:
    assert recommend(server, customerId="LOOP-WEB", channel="web", limit=3)["count"] == 3
    assert recommend(server, customerId="LOOP-WEB", channel="web")["count"] == 0


def test_requests_batched_together_keep_their_own_results(server: Server) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers(),
                                     timeout=30) as client:
            bodies = [
                {"customerId": f"BATCH-{i}", "channel": "email", "limit": 1 + i % 4}
                if i % 7 else {"customerId": f"BATCH-{i}", "decisionFlowKey": f"missing-{i}"}
                for i in range(28)
            ]
            return list(await asyncio.gather(*(client.post(RECOMMEND, json=b) for b in bodies)))

    responses = asyncio.run(burst())
    for i, response in enumerate(responses):
        if i % 7:
            body = response.json()
            assert response.status_code == 200 and body["customerId"] == f"BATCH-{i}"
            assert body["count"] == 1 + i % 4
        else:
            assert f"missing-{i}" in error_of(response, 404, "NOT_FOUND")["message"]
    batcher = server.app.state.services.recommender.batcher
    assert batcher.batches < batcher.items  # some requests shared a decide call


def test_multi_placement_deduplicates_offers(server: Server) -> None:
    body = recommend(server, customerId="MULTI-1", channel="web", deduplicate=True,
                     placements=[{"placementId": "pl_web_hero"},
                                 {"placementId": "pl_web_sidebar", "limit": 2}])
    results = body["placementResults"]
    assert [r["placementId"] for r in results] == ["pl_web_hero", "pl_web_sidebar"]
    assert [r["count"] for r in results] == [len(r["decisions"]) for r in results]
    offers = [d["offerId"] for r in results for d in r["decisions"]]
    assert len(offers) == len(set(offers)) == body["count"]
    assert [d["rank"] for d in body["decisions"]] == list(range(1, body["count"] + 1))
