"""Authentication (tenant header + HMAC-verified key, Bearer form) and key management."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta

from tests.api.conftest import PEPPER, Server, error_of

RECOMMEND = "/api/v1/recommend"
BODY = {"customerId": "AUTH-FRESH", "channel": "email", "limit": 1}


def test_valid_key_in_either_header_form_is_accepted(server: Server) -> None:
    key = server.keys["demo"]
    anon = server.client(tenant=None)
    plain = anon.post(RECOMMEND, json=BODY, headers={"x-tenant-id": "demo", "x-api-key": key})
    bearer = anon.post(RECOMMEND, json=BODY,
                       headers={"X-Tenant-Id": "demo", "Authorization": f"Bearer {key}"})
    assert plain.status_code == bearer.status_code == 200
    assert plain.json()["count"] == bearer.json()["count"] == 1


def test_each_credential_failure_is_401_with_the_envelope(server: Server) -> None:
    anon = server.client(tenant=None)
    demo_key, other_key = server.keys["demo"], server.keys["other"]
    cases = {
        "no headers": {},
        "missing tenant": {"x-api-key": demo_key},
        "missing key": {"x-tenant-id": "demo"},
        "wrong key": {"x-tenant-id": "demo", "x-api-key": "krn_not_a_key_of_anyone_at_all"},
        "other tenant's key": {"x-tenant-id": "demo", "x-api-key": other_key},
        "key for an unknown tenant": {"x-tenant-id": "nope", "x-api-key": demo_key},
        "bearer of the wrong tenant": {"x-tenant-id": "other",
                                       "Authorization": f"Bearer {demo_key}"},
        "not a bearer scheme": {"x-tenant-id": "demo", "Authorization": f"Basic {demo_key}"},
    }
    for name, headers in cases.items():
        response = anon.post(RECOMMEND, json=BODY, headers=headers)
        error_of(response, 401, "UNAUTHORIZED")
        assert "x-ratelimit-limit" not in response.headers, name


def test_missing_tenant_and_missing_key_say_which_header(server: Server) -> None:
    anon = server.client(tenant=None)
    no_tenant = error_of(anon.get("/api/v1/api-keys", headers={"x-api-key": "krn_x"}), 401,
                         "UNAUTHORIZED")
    assert "x-tenant-id" in no_tenant["message"]
    no_key = error_of(anon.get("/api/v1/api-keys", headers={"x-tenant-id": "demo"}), 401,
                      "UNAUTHORIZED")
    assert "x-api-key" in no_key["message"] and "Bearer" in no_key["message"]


def test_created_key_is_shown_once_and_stored_only_as_its_hmac(fresh_server: Server) -> None:
    client = fresh_server.client()
    created = client.post("/api/v1/api-keys", json={"name": "Batch Loader"})
    assert created.status_code == 201
    body = created.json()
    assert set(body) >= {"id", "name", "key", "prefix", "expiresAt", "createdAt", "warning"}
    assert body["key"].startswith("krn_") and body["prefix"] == body["key"][:12]
    assert body["name"] == "Batch Loader" and body["expiresAt"] is None
    listed = client.get("/api/v1/api-keys").json()
    assert listed["total"] == len(listed["data"]) == 2
    assert all("key" not in k for k in listed["data"])
    assert body["key"] not in str(listed)
    (stored,) = fresh_server.sql("SELECT key_hash FROM api_keys WHERE id = ?", [body["id"]])
    expected = hmac.new(PEPPER.encode(), body["key"].encode(), hashlib.sha256).hexdigest()
    assert stored[0] == expected
    # the new key works at once, for its own tenant only
    fresh = fresh_server.client(key=body["key"])
    assert fresh.get("/api/v1/api-keys").status_code == 200
    other = fresh_server.client(tenant="other", key=body["key"])
    error_of(other.get("/api/v1/api-keys"), 401, "UNAUTHORIZED")


def test_revoked_key_fails_at_once_in_both_delete_forms(fresh_server: Server) -> None:
    admin = fresh_server.client()
    for form in ("query", "path"):
        key = admin.post("/api/v1/api-keys", json={}).json()
        user = fresh_server.client(key=key["key"])
        assert user.post(RECOMMEND, json=BODY).status_code == 200
        if form == "query":
            revoked = admin.request("DELETE", "/api/v1/api-keys", params={"id": key["id"]},
                                    json={"reason": "rotated"})
        else:
            revoked = admin.delete(f"/api/v1/api-keys/{key['id']}")
        assert revoked.status_code == 204 and revoked.content == b""
        error_of(user.post(RECOMMEND, json=BODY), 401, "UNAUTHORIZED")
        error_of(user.post(RECOMMEND, json=BODY, headers={"x-api-key": "",
                                                          "Authorization": f"Bearer {key['key']}"}),
                 401, "UNAUTHORIZED")
        ids = [k["id"] for k in admin.get("/api/v1/api-keys").json()["data"]]
        assert key["id"] not in ids
    (reason,) = fresh_server.sql(
        "SELECT revoke_reason FROM api_keys WHERE revoked_at IS NOT NULL ORDER BY revoked_at "
        "LIMIT 1"
    )
    assert reason[0] == "rotated"


def test_revoking_an_unknown_or_missing_id(fresh_server: Server) -> None:
    admin = fresh_server.client()
    error_of(admin.delete("/api/v1/api-keys/key_nope"), 404, "NOT_FOUND")
    missing = error_of(admin.delete("/api/v1/api-keys"), 400, "VALIDATION_ERROR")
    assert missing["details"][0]["field"] == "id"


def test_expired_key_fails_once_its_time_has_passed(fresh_server: Server) -> None:
    admin = fresh_server.client()
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    key = admin.post("/api/v1/api-keys", json={"expiresAt": expires.isoformat()})
    assert key.status_code == 201, key.text
    assert key.json()["expiresAt"].endswith("Z")
    user = fresh_server.client(key=key.json()["key"])
    assert user.get("/api/v1/api-keys").status_code == 200
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
    error_of(user.get("/api/v1/api-keys"), 401, "UNAUTHORIZED")
    past = admin.post("/api/v1/api-keys", json={"expiresAt": "2001-01-01T00:00:00Z"})
    assert error_of(past, 400, "VALIDATION_ERROR")["details"][0]["field"] == "expiresAt"


def test_a_scoped_key_is_forbidden_on_the_decisioning_api(fresh_server: Server) -> None:
    admin = fresh_server.client()
    scoped = admin.post("/api/v1/api-keys", json={"scopes": ["scim"]}).json()
    assert scoped["scopes"] == ["scim"]
    user = fresh_server.client(key=scoped["key"])
    error_of(user.post(RECOMMEND, json=BODY), 403, "FORBIDDEN")
    too_many = admin.post("/api/v1/api-keys", json={"scopes": [f"s{i}" for i in range(17)]})
    error_of(too_many, 400, "VALIDATION_ERROR")
    too_long = admin.post("/api/v1/api-keys", json={"scopes": ["x" * 65]})
    error_of(too_long, 400, "VALIDATION_ERROR")
