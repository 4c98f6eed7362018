"""Decision flows over HTTP: drafts validated by the engine, immutable published versions,
rollback, the default flow, the Base NBA flow, optimistic concurrency and flow routes."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, error_of

FLOWS = "/api/v1/decision-flows"


def pipeline(server: Server, max_candidates: int = 5) -> dict[str, Any]:
    """The pack's pipeline with its rank node keeping ``max_candidates`` offers."""
    config = copy.deepcopy(server.client().get(f"{FLOWS}/flow_starbucks").json()["draftConfig"])
    for node in config["nodes"]:
        if node["type"] == "rank":
            node["config"]["maxCandidates"] = max_candidates
    return config


def new_flow(client: httpx.Client, key: str, **extra: Any) -> dict[str, Any]:
    created = client.post(FLOWS, json={"key": key, "name": key.title(), **extra})
    assert created.status_code == 201, created.text
    return created.json()


def test_create_defaults_and_key_rules(server: Server) -> None:
    demo = server.client()
    error = error_of(demo.post(FLOWS, json={"name": "No key"}), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "key"
    flow = new_flow(demo, "defaults")
    assert (
        flow["status"],
        flow["autoAssembly"],
        flow["publishedVersions"],
        flow["isDefault"],
        flow["rowVersion"],
    ) == ("draft", True, [], False, 1)
    assert flow["draftConfig"] == {"version": 2, "nodes": [], "flowConfig": {}}
    error_of(demo.post(FLOWS, json={"key": "defaults", "name": "Again"}), 409, "CONFLICT")
    error = error_of(
        demo.post(
            FLOWS,
            json={
                "key": "sneaky",
                "name": "Sneaky",
                "publishedVersions": [
                    {
                        "version": 1,
                        "config": pipeline(server),
                        "publishedAt": "2026-01-01T00:00:00Z",
                    }
                ],
            },
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "publishedVersions"


def _nodes(*types: str) -> dict[str, Any]:
    return {
        "version": 2,
        "nodes": [{"id": f"n{i}_{t}", "type": t, "config": {}} for i, t in enumerate(types)],
        "flowConfig": {},
    }


BAD_DRAFTS = [
    (_nodes("inventory", "inventory", "score"), "draftConfig.nodes[1].type", "n1_inventory"),
    (_nodes("score", "inventory"), "draftConfig.nodes[0].type", "n0_score"),
    (_nodes("inventory", "score", "filter"), "draftConfig.nodes[2].type", "phase 1"),
    (_nodes("inventory", "teleport"), "draftConfig.nodes[1].type", "unknown node type"),
    (_nodes("inventory", "response", "score"), "draftConfig.nodes[1]", "last node"),
    (
        {
            "version": 2,
            "nodes": [
                {"id": "inv", "type": "inventory"},
                {"id": "sc", "type": "score", "config": {"method": "magic"}},
            ],
        },
        "draftConfig.nodes[1].config.method",
        "'sc'",
    ),
    ({"version": 3, "nodes": []}, "draftConfig.version", "version must be 2"),
    ({"version": 2, "nodes": "all"}, "draftConfig.nodes", "nodes"),
]


@pytest.mark.parametrize(("config", "field", "message"), BAD_DRAFTS)
def test_invalid_drafts_are_400_naming_node_and_field(
    config: dict[str, Any], field: str, message: str, server: Server
) -> None:
    demo = server.client()
    error = error_of(
        demo.post(FLOWS, json={"key": "bad-draft", "name": "Bad", "draftConfig": config}),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == field, error
    assert message in error["message"], error
    error_of(
        demo.patch(f"{FLOWS}/flow_starbucks", json={"draftConfig": config}), 400, "VALIDATION_ERROR"
    )


def test_publish_append_versions_and_rollback_restores_one(server: Server) -> None:
    demo = server.client()
    flow = new_flow(demo, "releases")
    url = f"{FLOWS}/{flow['id']}"
    for n in range(1, 6):
        saved = demo.patch(url, json={"draftConfig": pipeline(server, max_candidates=n)})
        assert saved.status_code == 200, saved.text
        if n % 2:
            published = demo.post(f"{url}/publish", json={"notes": f"release {n}"})
        else:  # the spec's form: id in the body
            published = demo.post(
                f"{FLOWS}/publish", json={"id": flow["id"], "notes": f"release {n}"}
            )
        assert published.status_code == 200, published.text
        assert published.json()["status"] == "active"
        assert published.json()["publishedVersions"][-1]["version"] == n

    listed = demo.get(f"{FLOWS}/versions", params={"id": flow["id"]}).json()
    assert listed == demo.get(f"{url}/versions").json()
    assert listed["flowId"] == flow["id"]
    assert [v["version"] for v in listed["versions"]] == [1, 2, 3, 4, 5]
    assert [v["notes"] for v in listed["versions"]] == [f"release {n}" for n in range(1, 6)]
    assert all(
        v["summary"] == {"nodeCount": 9, "scoringMethod": "priority_weighted"}
        for v in listed["versions"]
    )
    v3 = demo.get(f"{url}/versions", params={"version": 3}).json()
    assert v3["version"] == 3 and v3["configSnapshot"] == pipeline(server, max_candidates=3)
    error_of(demo.get(f"{url}/versions", params={"version": 9}), 404, "NOT_FOUND")

    body = {
        "customerId": "SBX-000011",
        "decisionFlowKey": "releases",
        "channel": "email",
        "limit": 10,
        "debug": True,
    }
    before = demo.post("/api/v1/recommend", json=body).json()
    assert before["meta"]["flowVersion"] == 5

    rolled = demo.post(f"{url}/rollback", json={"version": 3, "notes": "too many offers"})
    assert rolled.status_code == 200, rolled.text
    doc = rolled.json()
    versions = doc["publishedVersions"]
    assert [v["version"] for v in versions] == [1, 2, 3, 4, 5, 6]
    assert versions[5]["config"] == versions[2]["config"]
    assert versions[3]["notes"] == "release 4" and versions[4]["notes"] == "release 5"
    assert versions[5]["notes"] == "Rollback to v3: too many offers"
    assert doc["draftConfig"] == versions[2]["config"] and doc["status"] == "active"

    after = demo.post("/api/v1/recommend", json=body).json()
    assert after["meta"]["flowVersion"] == 6
    assert after["count"] <= 3 < max(before["count"], 4)

    again = demo.post(f"{FLOWS}/rollback", json={"id": flow["id"], "version": 1})
    assert again.json()["publishedVersions"][-1]["notes"].startswith("Rollback to v1: ")
    error = error_of(demo.post(f"{url}/rollback", json={"version": 42}), 404, "NOT_FOUND")
    assert error["details"][0]["field"] == "version"
    error_of(demo.post(f"{url}/rollback", json={"version": 0}), 400, "VALIDATION_ERROR")


def test_publish_refuses_drafts_that_cannot_run(server: Server) -> None:
    demo = server.client()
    flow = new_flow(demo, "not-ready")
    url = f"{FLOWS}/{flow['id']}"
    error = error_of(demo.post(f"{url}/publish"), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "draftConfig.nodes"
    config = pipeline(server)
    config["nodes"].insert(1, {"id": "branch", "type": "conditional", "config": {}})
    assert demo.patch(url, json={"draftConfig": config}).status_code == 200  # a valid draft
    error = error_of(demo.post(f"{url}/publish", json={"notes": "x"}), 400, "VALIDATION_ERROR")
    assert "branch" in error["message"] and error["details"][0]["field"].startswith(
        "draftConfig.nodes[1]"
    )
    doc = demo.get(url).json()
    assert doc["publishedVersions"] == [] and doc["status"] == "draft"
    error_of(demo.post(f"{FLOWS}/flow_nope/publish"), 404, "NOT_FOUND")
    error_of(demo.post(f"{FLOWS}/publish", json={"notes": "no id"}), 400, "VALIDATION_ERROR")


def test_stale_row_version_is_rejected_and_changes_nothing(server: Server) -> None:
    demo = server.client()
    flow = new_flow(demo, "concurrent", draftConfig=pipeline(server))
    url = f"{FLOWS}/{flow['id']}"
    first = demo.patch(url, json={"description": "mine", "rowVersion": 1})
    assert first.status_code == 200 and first.json()["rowVersion"] == 2
    stale = demo.patch(url, json={"description": "theirs", "rowVersion": 1})
    error = error_of(stale, 409, "CONFLICT")
    assert error["details"][0]["field"] == "rowVersion"
    error_of(
        demo.put(url, json={"key": "concurrent", "name": "C"}, headers={"If-Match": "1"}),
        409,
        "CONFLICT",
    )
    error_of(demo.post(f"{url}/publish", json={"rowVersion": 1}), 409, "CONFLICT")
    error_of(demo.post(f"{url}/publish", headers={"If-Match": '"1"'}), 409, "CONFLICT")
    current = demo.get(url).json()
    assert (current["description"], current["rowVersion"], current["publishedVersions"]) == (
        "mine",
        2,
        [],
    )
    published = demo.post(f"{url}/publish", json={"rowVersion": 2})
    assert published.status_code == 200 and published.json()["rowVersion"] == 3


def test_published_versions_are_read_only(server: Server) -> None:
    demo = server.client()
    flow = new_flow(demo, "frozen", draftConfig=pipeline(server))
    url = f"{FLOWS}/{flow['id']}"
    doc = demo.post(f"{url}/publish", json={"notes": "v1"}).json()
    tampered = copy.deepcopy(doc["publishedVersions"])
    tampered[0]["notes"] = "rewritten"
    error = error_of(demo.patch(url, json={"publishedVersions": tampered}), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "publishedVersions"
    error_of(demo.patch(url, json={"publishedVersions": []}), 400, "VALIDATION_ERROR")
    # a GET body sent back unchanged is fine; omitting the versions keeps them too
    same = demo.put(url, json={**doc, "description": "round trip"})
    assert same.status_code == 200, same.text
    assert same.json()["publishedVersions"] == doc["publishedVersions"]
    kept = demo.put(url, json={"key": "frozen", "name": "Frozen", "status": "active"})
    assert kept.json()["publishedVersions"] == doc["publishedVersions"]
    assert kept.json()["draftConfig"]["nodes"] == []  # PUT replaced the draft


def test_ensure_base_and_the_default_flow(server: Server) -> None:
    bare = server.client(tenant="bare")
    created = bare.post(f"{FLOWS}/ensure-base")
    assert created.status_code == 201 and created.json()["created"] is True
    again = bare.post(f"{FLOWS}/ensure-base")
    assert again.status_code == 200
    assert again.json() == {"flowId": created.json()["flowId"], "created": False}
    base = bare.get(f"{FLOWS}/{created.json()['flowId']}").json()
    assert base["key"] == "base-nba-flow" and base["isDefault"] is True  # the first flow
    assert [n["type"] for n in base["publishedVersions"][0]["config"]["nodes"]] == [
        "inventory",
        "match_creatives",
        "enrich",
        "qualify",
        "contact_policy",
        "extension_point",
        "score",
        "extension_point",
        "rank",
        "extension_point",
        "response",
    ]

    b = new_flow(bare, "flow-b")
    assert b["isDefault"] is False
    made_default = bare.patch(f"{FLOWS}/{b['id']}", json={"isDefault": True})
    assert made_default.json()["isDefault"] is True
    assert bare.get(f"{FLOWS}/{base['id']}").json()["isDefault"] is False
    c = new_flow(bare, "flow-c", isDefault=True)
    defaults = [f["key"] for f in bare.get(FLOWS).json()["data"] if f["isDefault"]]
    assert defaults == ["flow-c"] and c["isDefault"]
    # a recommend on the bare tenant runs the base flow (the default has no published version)
    rec = bare.post("/api/v1/recommend", json={"customerId": "anyone", "debug": True})
    assert rec.status_code == 200 and rec.json()["meta"]["decisionFlowKey"] == "base-nba-flow"


def test_flow_routes_post_is_an_upsert(server: Server) -> None:
    demo = server.client()
    route = {"channelId": "ch_email", "decisionFlowId": "flow_starbucks"}
    first = demo.post("/api/v1/flow-routes", json=route)
    assert first.status_code == 201, first.text
    propensity = next(
        f
        for f in demo.get(FLOWS, params={"limit": 100}).json()["data"]
        if f["key"] == "propensity-flow"
    )
    second = demo.post(
        "/api/v1/flow-routes", json={**route, "priority": 5, "decisionFlowId": propensity["id"]}
    )
    assert second.status_code == 201
    assert second.json()["id"] == first.json()["id"] and second.json()["version"] == 2
    other_slot = demo.post(
        "/api/v1/flow-routes", json={**route, "placementId": None, "channelId": "ch_web"}
    )
    assert other_slot.json()["id"] != first.json()["id"]
    listed = demo.get("/api/v1/flow-routes").json()["data"]
    assert sum(r["channelId"] == "ch_email" for r in listed) == 1
    # the route takes effect on the very next recommend
    rec = demo.post(
        "/api/v1/recommend", json={"customerId": "SBX-000021", "channel": "email", "debug": True}
    )
    assert rec.json()["meta"]["decisionFlowKey"] == "propensity-flow"


def test_lifecycle_endpoints_are_tenant_scoped(server: Server) -> None:
    demo, other = server.client(), server.client(tenant="other")
    flow = new_flow(demo, "demo-only", draftConfig=pipeline(server))
    demo.post(f"{FLOWS}/{flow['id']}/publish")
    url = f"{FLOWS}/{flow['id']}"
    for response in (
        other.post(f"{url}/publish"),
        other.post(f"{FLOWS}/publish", json={"id": flow["id"]}),
        other.post(f"{url}/rollback", json={"version": 1}),
        other.post(f"{FLOWS}/rollback", json={"id": flow["id"], "version": 1}),
        other.get(f"{url}/versions"),
        other.get(f"{FLOWS}/versions", params={"id": flow["id"]}),
    ):
        error_of(response, 404, "NOT_FOUND")
    assert len(demo.get(f"{url}/versions").json()["versions"]) == 1
