"""Respond: validation, resolution, durability before the ack, exactly-once per key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from api.runtime import ServingConfig
from api.state import StateConfig
from tests.api.conftest import Pack, Server, error_of, serve

RESPOND = "/api/v1/respond"


def body(key: str, **fields: Any) -> dict[str, Any]:
    return {"customerId": "SBX-000010", "creativeId": "cr_bogo_5_5d_web", "channelId": "ch_web",
            "outcome": "click", "idempotencyKey": key, **fields}


def stored(server: Server, key: str) -> list[tuple[Any, ...]]:
    return server.sql(
        "SELECT id, customer_id, offer_id, creative_id, channel_id, placement_id, outcome, "
        "classification, direction, ts, value, recommendation_id, rank, context "
        "FROM interactions WHERE tenant_id = 'demo' AND idempotency_key = ?",
        [key],
    )


def test_a_response_is_recorded_once_and_replayed_for_the_same_key(server: Server) -> None:
    client = server.client()
    first = client.post(RESPOND, json=body("once", conversionValue=4.5,
                                           metadata={"source": "homepage"}))
    assert first.status_code == 201
    result = first.json()
    assert result == {"recorded": True, "interactionId": result["interactionId"],
                      "outcome": "click", "classification": "positive",
                      "offerId": "off_bogo_5_5d", "duplicate": False}
    (row,) = stored(server, "once")  # durable before the 201 was sent
    assert row[0] == result["interactionId"]
    assert row[2:9] == ("off_bogo_5_5d", "cr_bogo_5_5d_web", "ch_web", "pl_web_hero", "click",
                        "positive", "inbound")
    assert row[10] == 4.5 and '"source":"homepage"' in row[13]
    again = client.post(RESPOND, json=body("once", outcome="dismiss"))
    assert again.status_code == 200
    assert again.json() == {**result, "duplicate": True}
    assert len(stored(server, "once")) == 1


def test_the_key_may_come_from_the_header_and_is_required(server: Server) -> None:
    client = server.client()
    no_key = body("x")
    del no_key["idempotencyKey"]
    error = error_of(client.post(RESPOND, json=no_key), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "idempotencyKey"
    via_header = client.post(RESPOND, json=no_key, headers={"Idempotency-Key": "hdr-1"})
    assert via_header.status_code == 201
    replay = client.post(RESPOND, json=no_key, headers={"Idempotency-Key": "hdr-1"})
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert len(stored(server, "hdr-1")) == 1


def test_concurrent_duplicates_record_exactly_one_interaction(server: Server) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers(),
                                     timeout=30) as client:
            same = [client.post(RESPOND, json=body("race")) for _ in range(24)]
            distinct = [client.post(RESPOND, json=body(f"race-{i}")) for i in range(24)]
            return list(await asyncio.gather(*same, *distinct))

    responses = asyncio.run(burst())
    same, distinct = responses[:24], responses[24:]
    assert sorted(r.status_code for r in same) == [200] * 23 + [201]
    assert len({r.json()["interactionId"] for r in same}) == 1
    assert sum(r.json()["duplicate"] for r in same) == 23
    assert len(stored(server, "race")) == 1
    assert {r.status_code for r in distinct} == {201}
    assert len({r.json()["interactionId"] for r in distinct}) == 24


def test_outcome_must_be_registered(server: Server) -> None:
    client = server.client()
    error = error_of(client.post(RESPOND, json=body("bad-outcome", outcome="teleport")), 400,
                     "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "outcome" and "teleport" in error["message"]
    assert "click" in error["message"]  # it lists what is registered
    assert stored(server, "bad-outcome") == []
    # a failed attempt does not burn the key
    assert client.post(RESPOND, json=body("bad-outcome")).status_code == 201
    alias = body("alias-outcome")
    del alias["outcome"]
    alias["interactionType"] = "conversion"
    assert client.post(RESPOND, json=alias).json()["outcome"] == "conversion"


def test_recommendation_and_rank_resolve_offer_creative_and_channel(server: Server) -> None:
    client = server.client()
    rec = client.post("/api/v1/recommend",
                      json={"customerId": "RESOLVE-1", "channel": "email", "limit": 2}).json()
    second = rec["decisions"][1]
    response = client.post(RESPOND, json={
        "customerId": "RESOLVE-1", "recommendationId": rec["recommendationId"], "rank": 2,
        "outcome": "impression", "idempotencyKey": "resolve-1",
    })
    assert response.status_code == 201 and response.json()["offerId"] == second["offerId"]
    row = stored(server, "resolve-1")[0]
    assert row[2:5] == (second["offerId"], second["creativeId"], "ch_email")
    assert row[8] == "outbound"  # impressions default to outbound
    assert row[11:13] == (rec["recommendationId"], 2)
    past = client.post(RESPOND, json={
        "customerId": "RESOLVE-1", "recommendationId": rec["recommendationId"], "rank": 3,
        "outcome": "click", "idempotencyKey": "resolve-2",
    })
    assert error_of(past, 404, "NOT_FOUND")["details"][0]["field"] == "rank"
    unknown = client.post(RESPOND, json={
        "customerId": "RESOLVE-1", "recommendationId": "rec_nope", "rank": 1,
        "outcome": "click", "idempotencyKey": "resolve-3",
    })
    assert error_of(unknown, 404, "NOT_FOUND")["details"][0]["field"] == "recommendationId"


def test_the_creative_decides_the_channel_and_timestamps_are_kept(server: Server) -> None:
    client = server.client()
    sent = client.post(RESPOND, json=body("channel-1", channelId="ch_social",
                                          timestamp="2026-03-01T12:30:00+02:00"))
    assert sent.status_code == 201
    row = stored(server, "channel-1")[0]
    assert row[4] == "ch_web"
    assert row[9].isoformat() == "2026-03-01T10:30:00"
    error_of(client.post(RESPOND, json=body("channel-2", creativeId="cr_nope")), 404,
             "NOT_FOUND")
    error_of(client.post(RESPOND, json=body("channel-3", direction="sideways")), 400,
             "VALIDATION_ERROR")
    nothing = {"customerId": "c", "outcome": "click", "idempotencyKey": "channel-4"}
    error_of(client.post(RESPOND, json=nothing), 400, "VALIDATION_ERROR")
    by_offer = {**nothing, "offerId": "off_bogo_5_5d", "channelId": "ch_email"}
    assert client.post(RESPOND, json=by_offer).status_code == 201


def test_a_recommendation_no_longer_cached_is_resolved_from_the_log(
    pack: Pack, tmp_path: Path
) -> None:
    config = ServingConfig(state=StateConfig(recommendation_capacity=1))
    for server in serve(pack, tmp_path, config):
        client = server.client()
        first, second = (
            client.post("/api/v1/recommend",
                        json={"customerId": f"EVICT-{i}", "channel": "email"}).json()
            for i in (1, 2)
        )
        assert server.app.state.runtime.tenants["demo"].recommendations.get(
            first["recommendationId"]) is None
        response = client.post(RESPOND, json={
            "customerId": "EVICT-1", "recommendationId": first["recommendationId"], "rank": 1,
            "outcome": "click", "idempotencyKey": "evicted-1",
        })
        assert response.status_code == 201
        assert response.json()["offerId"] == first["decisions"][0]["offerId"]
        assert second["count"] >= 1
