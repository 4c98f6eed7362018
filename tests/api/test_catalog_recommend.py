"""A catalog change made through the API is what the very next recommend sees."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Server

RULES = "/api/v1/qualification-rules"


def offers_for(server: Server, customer: str) -> list[str]:
    response = server.client().post(
        "/api/v1/recommend", json={"customerId": customer, "channel": "email", "limit": 10}
    )
    assert response.status_code == 200, response.text
    return [d["offerId"] for d in response.json()["decisions"]]


def test_changes_take_effect_on_the_very_next_recommend(server: Server) -> None:
    demo = server.client()
    customer = "SBX-000005"
    first = offers_for(server, customer)
    assert len(first) >= 2, first
    paused, gated = first[0], first[1]

    assert demo.patch(f"/api/v1/offers/{paused}", json={"status": "paused"}).status_code == 200
    second = offers_for(server, customer)
    assert paused not in second and gated in second

    rule: dict[str, Any] = {
        "name": "Gate one offer",
        "status": "active",
        "scope": "offer",
        "scopeId": gated,
        "ruleType": "segment_required",
        "config": {"requiredSegments": ["no-such-segment"]},
    }
    created = demo.post(RULES, json=rule)
    assert created.status_code == 201, created.text
    third = offers_for(server, customer)
    assert gated not in third and paused not in third

    demo.patch(f"{RULES}/{created.json()['id']}", json={"status": "paused"})
    assert gated in offers_for(server, customer)
    demo.patch(f"/api/v1/offers/{paused}", json={"status": "active"})
    assert paused in offers_for(server, customer)

    demo.delete(f"/api/v1/offers/{gated}")
    assert gated not in offers_for(server, customer)


def test_a_new_offer_and_creative_are_recommended_at_once(server: Server) -> None:
    demo = server.client()
    offer = demo.post(
        "/api/v1/offers",
        json={
            "name": "Double stars",
            "status": "active",
            "priority": 100,
            "categoryId": "cat_engagement",
        },
    ).json()
    creative = demo.post(
        "/api/v1/creatives",
        json={
            "name": "Double stars email",
            "offerId": offer["id"],
            "channelId": "ch_email",
            "status": "active",
            "templateType": "email_html",
            "content": {"subject": "Double stars today"},
        },
    )
    assert creative.status_code == 201, creative.text
    assert offers_for(server, "SBX-000006")[0] == offer["id"]
