"""Tenant isolation: another tenant's resources are simply not found (404), never shown."""

from __future__ import annotations

from tests.api.conftest import Server, error_of


def test_tenants_never_see_each_others_resources(fresh_server: Server) -> None:
    demo, other = fresh_server.client(), fresh_server.client(tenant="other")
    rec = demo.post("/api/v1/recommend",
                    json={"customerId": "SBX-000003", "channel": "email", "debug": True}).json()
    rec_id = rec["recommendationId"]
    assert demo.get(f"/api/v1/decision-traces/{rec_id}").status_code == 200
    error_of(other.get(f"/api/v1/decision-traces/{rec_id}"), 404, "NOT_FOUND")
    listed = other.get("/api/v1/decision-traces", params={"customerId": "SBX-000003"}).json()
    assert listed["total"] == 0 and listed["traces"] == []
    assert rec_id not in other.get("/api/v1/decision-traces").text

    demo_keys = demo.get("/api/v1/api-keys").json()["data"]
    other_keys = other.get("/api/v1/api-keys").json()["data"]
    assert {k["id"] for k in demo_keys}.isdisjoint({k["id"] for k in other_keys})
    error_of(other.delete(f"/api/v1/api-keys/{demo_keys[0]['id']}"), 404, "NOT_FOUND")
    error_of(other.delete("/api/v1/api-keys", params={"id": demo_keys[0]["id"]}), 404,
             "NOT_FOUND")
    assert demo.get("/api/v1/api-keys").status_code == 200  # still valid

    respond = {"customerId": "SBX-000003", "recommendationId": rec_id, "rank": 1,
               "outcome": "click", "idempotencyKey": "shared-key"}
    error_of(other.post("/api/v1/respond", json=respond), 404, "NOT_FOUND")
    assert demo.post("/api/v1/respond", json=respond).status_code == 201
    # idempotency keys are per tenant: the same key is new for the other tenant
    mine = {**respond, "recommendationId": None, "rank": None,
            "creativeId": "cr_bogo_5_5d_email"}
    mine = {k: v for k, v in mine.items() if v is not None}
    created = other.post("/api/v1/respond", json=mine)
    assert created.status_code == 201 and created.json()["duplicate"] is False
