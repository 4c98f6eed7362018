"""One error envelope for every failure, with the x-request-id correlation id."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from api import create_app
from engine.errors import ConflictError, InternalError
from engine.settings import Settings
from tests.api.conftest import Server, error_of

RECOMMEND = "/api/v1/recommend"


def test_every_response_carries_a_request_id(server: Server) -> None:
    client = server.client()
    ok = client.get("/api/v1/api-keys")
    assert ok.status_code == 200 and len(ok.headers["x-request-id"]) >= 16
    echoed = client.get("/api/v1/api-keys", headers={"x-request-id": "trace-me-42"})
    assert echoed.headers["x-request-id"] == "trace-me-42"
    ids = {client.get("/api/v1/api-keys").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_bad_bodies_are_400_and_name_every_bad_field(server: Server) -> None:
    client = server.client()
    malformed = error_of(client.post(RECOMMEND, content=b'{"customerId": ',
                                     headers={"content-type": "application/json"}),
                         400, "VALIDATION_ERROR")
    assert "malformed JSON" in malformed["message"]
    error_of(client.post(RECOMMEND, content=b"[1, 2]",
                         headers={"content-type": "application/json"}), 400, "VALIDATION_ERROR")
    error_of(client.post(RECOMMEND, content=b"", headers={"content-type": "application/json"}),
             400, "VALIDATION_ERROR")
    bad = error_of(client.post(RECOMMEND, json={"limit": "5", "channel": 3, "debug": "yes",
                                                "surprise": 1, "sessionId": "a/b"}),
                   400, "VALIDATION_ERROR")
    fields = {d["field"] for d in bad["details"]}
    assert fields == {"customerId", "limit", "channel", "debug", "surprise", "sessionId"}
    for limit in (0, 51):
        detail = error_of(client.post(RECOMMEND, json={"customerId": "c", "limit": limit}),
                          400, "VALIDATION_ERROR")["details"]
        assert detail[0]["field"] == "limit"
    assert client.post(RECOMMEND, json={"customerId": "c", "limit": 50}).status_code == 200
    nested = error_of(client.post(RECOMMEND, json={"customerId": "c",
                                                   "placements": [{"limit": 2}]}),
                      400, "VALIDATION_ERROR")
    assert nested["details"][0]["field"] == "placements.0.placementId"
    query = error_of(client.get("/api/v1/decision-traces", params={"limit": 500}),
                     400, "VALIDATION_ERROR")
    assert query["details"][0]["field"] == "limit"
    respond = error_of(client.post("/api/v1/respond", json={"customerId": "c", "outcome": "click",
                                                            "idempotencyKey": "k",
                                                            "conversionValue": "NaN"}),
                       400, "VALIDATION_ERROR")
    assert respond["details"][0]["field"] == "conversionValue"


def test_not_found_unsupported_and_method_errors(server: Server) -> None:
    client = server.client()
    unknown_route = error_of(client.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    assert "/api/v1/nothing-here" in unknown_route["message"]
    error_of(server.client(tenant=None).get("/"), 404, "NOT_FOUND")
    flow = error_of(client.post(RECOMMEND, json={"customerId": "c", "decisionFlowKey": "nope"}),
                    404, "NOT_FOUND")
    assert "'nope'" in flow["message"] and flow["details"][0]["field"] == "decisionFlowKey"
    error_of(client.get("/api/v1/decision-traces/rec_missing"), 404, "NOT_FOUND")
    error_of(client.post(RECOMMEND, content=b"customerId=c",
                         headers={"content-type": "application/x-www-form-urlencoded"}),
             415, "UNSUPPORTED_MEDIA_TYPE")
    not_allowed = client.put(RECOMMEND, json={"customerId": "c"})
    error_of(not_allowed, 405, "METHOD_NOT_ALLOWED")


def test_huge_bodies_are_refused_without_reading_them(server: Server) -> None:
    client = server.client()
    big = b'{"customerId": "' + b"x" * 2_000_000 + b'"}'
    error_of(client.post(RECOMMEND, content=big, headers={"content-type": "application/json"}),
             413, "PAYLOAD_TOO_LARGE")

    def chunks():  # no content-length: counted while it streams in
        yield b'{"customerId": "'
        for _ in range(40):
            yield b"y" * 50_000
        yield b'"}'

    streamed = client.post(RECOMMEND, content=chunks(),
                           headers={"content-type": "application/json"})
    error_of(streamed, 413, "PAYLOAD_TOO_LARGE")


def test_conflict_and_unexpected_errors_render_the_envelope(tmp_path: Path) -> None:
    app = create_app(Settings(database_path=tmp_path / "unused.duckdb", api_key_pepper="p"))

    async def conflict() -> None:
        raise ConflictError("that already exists", field="name")

    async def crash() -> None:
        raise RuntimeError("secret internals: /etc/passwd")

    async def domain_internal() -> None:
        raise InternalError("database file /var/lib/x is corrupt")

    app.add_api_route("/boom/conflict", conflict)
    app.add_api_route("/boom/crash", crash)
    app.add_api_route("/boom/internal", domain_internal)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.get(p) for p in ("/boom/conflict", "/boom/crash",
                                                  "/boom/internal")]

    conflict_r, crash_r, internal_r = asyncio.run(run())
    assert error_of(conflict_r, 409, "CONFLICT")["details"] == [
        {"field": "name", "message": "that already exists"}
    ]
    for response in (crash_r, internal_r):
        error = error_of(response, 500, "INTERNAL_ERROR")
        assert "secret" not in response.text and "/var/lib" not in response.text
        assert error["recommendationId"] in error["message"]
