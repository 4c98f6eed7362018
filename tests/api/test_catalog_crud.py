"""Catalog CRUD over HTTP, entity by entity: create/get/list/update/delete round trips,
versions, soft delete, pagination, field validation and tenant isolation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.api.conftest import Server, error_of


@dataclass(frozen=True)
class Case:
    path: str
    create: dict[str, Any]
    patch: dict[str, Any]  # one field changed by PATCH
    reset: str  # a field PUT (with only the required fields) puts back to its default
    default: Any
    required: tuple[str, ...] = ("name",)
    extra_put: dict[str, Any] = field(default_factory=dict)


CASES = {
    "categories": Case(
        "/api/v1/categories",
        {"name": "Seasonal", "description": "Autumn"},
        {"color": "orange"},
        "description",
        "",
    ),
    "sub_categories": Case(
        "/api/v1/sub-categories",
        {"name": "Pumpkin", "categoryId": "cat_acquisition", "description": "x"},
        {"status": "paused"},
        "description",
        "",
        required=("name", "categoryId"),
    ),
    "offers": Case(
        "/api/v1/offers",
        {"name": "Pumpkin week", "categoryId": "cat_retention", "priority": 40},
        {"shortDesc": "spice"},
        "priority",
        50,
    ),
    "channels": Case(
        "/api/v1/channels",
        {"name": "SMS", "channelType": "sms", "deliveryMode": "file"},
        {"impressionMode": "implicit"},
        "deliveryMode",
        "api",
    ),
    "placements": Case(
        "/api/v1/placements",
        {"name": "Footer", "channelId": "ch_web", "maxSlots": 3},
        {"slotType": "footer"},
        "maxSlots",
        1,
        required=("name", "channelId"),
    ),
    "creatives": Case(
        "/api/v1/creatives",
        {
            "name": "Pumpkin email",
            "offerId": "off_bogo_5_5d",
            "channelId": "ch_email",
            "weight": 30,
            "content": {"subject": "Hi"},
        },
        {"abTestVariant": "variant_b"},
        "weight",
        100,
        required=("name", "offerId", "channelId"),
    ),
    "outcome_types": Case(
        "/api/v1/outcome-types",
        {
            "key": "quote_requested",
            "name": "Quote requested",
            "classification": "positive",
            "description": "asked",
        },
        {"name": "Quote asked"},
        "description",
        "",
        required=("key", "name", "classification"),
    ),
    "decision_flows": Case(
        "/api/v1/decision-flows",
        {"key": "pumpkin-flow", "name": "Pumpkin", "autoAssembly": False},
        {"description": "seasonal"},
        "autoAssembly",
        True,
        required=("key", "name"),
    ),
    "flow_routes": Case(
        "/api/v1/flow-routes",
        {"channelId": "ch_social", "decisionFlowId": "draft-flow-id", "priority": 4},
        {"description": "social"},
        "priority",
        0,
        required=("channelId", "decisionFlowId"),
    ),
    "qualification_rules": Case(
        "/api/v1/qualification-rules",
        {
            "name": "Loyal only",
            "status": "paused",
            "ruleType": "segment_required",
            "config": {"requiredSegments": ["loyal"]},
            "priority": 10,
        },
        {"description": "members of 3+ years"},
        "priority",
        50,
        required=("name", "ruleType", "config"),
    ),
    "contact_policies": Case(
        "/api/v1/contact-policies",
        {
            "name": "Weekly cap",
            "status": "paused",
            "scope": "global",
            "ruleType": "frequency_cap",
            "config": {"maxPerWeek": 5},
            "priority": 20,
        },
        {"description": "five a week"},
        "priority",
        50,
        required=("name", "ruleType", "scope", "config"),
    ),
}


def _resolve(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("decisionFlowId") == "draft-flow-id":
        flows = server.client().get("/api/v1/decision-flows", params={"limit": 100}).json()
        draft = next(f for f in flows["data"] if f["key"] == "draft-flow")
        body = {**body, "decisionFlowId": draft["id"]}
    return body


@pytest.mark.parametrize("entity", sorted(CASES))
def test_round_trip(entity: str, server: Server) -> None:
    case = CASES[entity]
    demo, other = server.client(), server.client(tenant="other")
    body = _resolve(server, case.create)

    created = demo.post(case.path, json=body)
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["version"] == 1 and doc["tenantId"] == "demo" and doc["deletedAt"] is None
    assert {k: doc[k] for k in body} == body
    url = f"{case.path}/{doc['id']}"
    assert demo.get(url).json() == doc
    assert doc["id"] in {d["id"] for d in demo.get(case.path, params={"limit": 100}).json()["data"]}

    # another tenant never sees it: every operation is a 404, its list does not show it
    for response in (
        other.get(url),
        other.patch(url, json=case.patch),
        other.put(url, json=body),
        other.delete(url),
    ):
        error_of(response, 404, "NOT_FOUND")
    assert doc["id"] not in other.get(case.path, params={"limit": 100}).text

    patched = demo.patch(url, json=case.patch)
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    assert {k: patched.json()[k] for k in case.patch} == case.patch
    assert patched.json()[case.reset] == body[case.reset]  # PATCH keeps the other fields

    put_body = {k: body[k] for k in case.required} | case.extra_put
    replaced = demo.put(url, json=put_body)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 3
    assert replaced.json()[case.reset] == case.default  # PUT replaces the whole document
    assert replaced.json()["createdAt"] == doc["createdAt"]

    # a stale If-Match is refused and changes nothing
    error_of(demo.patch(url, json=case.patch, headers={"If-Match": '"2"'}), 409, "CONFLICT")
    assert demo.get(url).json()["version"] == 3
    assert demo.patch(url, json=case.patch, headers={"If-Match": '"3"'}).json()["version"] == 4

    assert demo.delete(url).status_code == 204
    error_of(demo.get(url), 404, "NOT_FOUND")
    error_of(demo.delete(url), 404, "NOT_FOUND")
    error_of(demo.patch(url, json=case.patch), 404, "NOT_FOUND")
    listed = demo.get(case.path, params={"limit": 100}).json()["data"]
    assert doc["id"] not in {d["id"] for d in listed}
    deleted = demo.get(case.path, params={"limit": 100, "includeDeleted": True}).json()["data"]
    row = next(d for d in deleted if d["id"] == doc["id"])
    assert row["deletedAt"] is not None and row["version"] == 5
    assert demo.get(url, params={"includeDeleted": True}).json()["deletedAt"] is not None


def test_pages_are_disjoint_and_complete(server: Server) -> None:
    demo = server.client()
    everything = demo.get("/api/v1/creatives", params={"limit": 100}).json()
    assert everything["pagination"]["hasMore"] is False
    ids = [d["id"] for d in everything["data"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == everything["pagination"]["total"]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = demo.get("/api/v1/creatives", params=params).json()
        assert page["pagination"]["limit"] == 7
        assert page["pagination"]["total"] == len(ids)
        assert len(page["data"]) <= 7
        seen += [d["id"] for d in page["data"]]
        if not page["pagination"]["hasMore"]:
            assert page["pagination"]["nextCursor"] is None
            break
        cursor = page["pagination"]["nextCursor"]
        assert cursor == page["data"][-1]["id"]
    assert seen == ids and len(set(seen)) == len(seen)
    assert demo.get("/api/v1/creatives").json()["pagination"]["limit"] == 25


@pytest.mark.parametrize("limit", ["0", "101", "-1", "many"])
def test_limit_outside_1_to_100_is_a_400(limit: str, server: Server) -> None:
    error = error_of(
        server.client().get("/api/v1/offers", params={"limit": limit}), 400, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == "limit"


INVALID = [
    ("/api/v1/offers", {"name": "P", "priority": 101}, "priority", "less than or equal to 100"),
    ("/api/v1/offers", {"name": "P", "status": "live"}, "status", "'draft'"),
    ("/api/v1/offers", {"name": ""}, "name", "at least 1 character"),
    ("/api/v1/offers", {"priority": 5}, "name", "Field required"),
    (
        "/api/v1/offers",
        {"name": "P", "categoryId": "cat_nope"},
        "categoryId",
        "category 'cat_nope' does not exist",
    ),
    ("/api/v1/offers", {"name": "P", "colour": "red"}, "colour", "Extra inputs"),
    (
        "/api/v1/offers",
        {
            "name": "P",
            "mandatory": True,
            "mandatoryReason": "legal",
            "mandatoryExpiresAt": "2020-01-01T00:00:00Z",
        },
        "mandatoryExpiresAt",
        "in the future",
    ),
    ("/api/v1/offers", {"name": "P", "mandatory": True}, "mandatoryReason", "required"),
    (
        "/api/v1/offers",
        {"name": "P", "budget": {"dailyCapCents": 10**20}},
        "budget.dailyCapCents",
        "integer",
    ),
    (
        "/api/v1/creatives",
        {"name": "C", "offerId": "off_bogo_5_5d", "channelId": "ch_web", "weight": 101},
        "weight",
        "less than or equal to 100",
    ),
    (
        "/api/v1/creatives",
        {"name": "C", "offerId": "off_missing", "channelId": "ch_web"},
        "offerId",
        "offer 'off_missing' does not exist",
    ),
    (
        "/api/v1/creatives",
        {
            "name": "C",
            "offerId": "off_bogo_5_5d",
            "channelId": "ch_email",
            "placementId": "pl_web_hero",
        },
        "placementId",
        "belongs to channel 'ch_web'",
    ),
    (
        "/api/v1/creatives",
        {
            "name": "C",
            "offerId": "off_bogo_5_5d",
            "channelId": "ch_web",
            "templateType": "fax_cover",
        },
        "templateType",
        "'email_html'",
    ),
    ("/api/v1/channels", {"name": "Fax", "deliveryMode": "fax"}, "deliveryMode", "'api'"),
    ("/api/v1/channels", {"name": "Fax", "couplingMode": "loose"}, "couplingMode", "'partial'"),
    (
        "/api/v1/categories",
        {"name": "C", "customFields": [{"name": f"f{i}"} for i in range(501)]},
        "customFields",
        "at most 500 items",
    ),
    (
        "/api/v1/categories",
        {"name": "C", "customFields": [{"name": "x", "type": "computed"}]},
        "customFields.0.formula",
        "needs a formula",
    ),
    (
        "/api/v1/categories",
        {"name": "C", "customFields": [{"name": "x", "type": "computed", "formula": "1 +* 2"}]},
        "customFields.0.formula",
        "",
    ),
    ("/api/v1/categories", {"name": "C", "ordinal": -1}, "ordinal", "greater than or equal"),
    (
        "/api/v1/placements",
        {"name": "P", "channelId": "ch_web", "maxSlots": 0},
        "maxSlots",
        "greater than or equal to 1",
    ),
    ("/api/v1/sub-categories", {"name": "S"}, "categoryId", "Field required"),
    (
        "/api/v1/outcome-types",
        {"key": "Bad Key", "name": "B", "classification": "positive"},
        "key",
        "pattern",
    ),
    (
        "/api/v1/outcome-types",
        {"key": "meh", "name": "B", "classification": "meh"},
        "classification",
        "'positive'",
    ),
    ("/api/v1/flow-routes", {"channelId": "ch_web"}, "decisionFlowId", "Field required"),
    (
        "/api/v1/flow-routes",
        {"decisionFlowId": "flow_nope"},
        "decisionFlowId",
        "decision flow 'flow_nope' does not exist",
    ),
    (
        "/api/v1/flow-routes",
        {
            "decisionFlowId": "flow_starbucks",
            "channelId": "ch_email",
            "placementId": "pl_mobile_feed",
        },
        "placementId",
        "ch_mobile",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    INVALID,
    ids=[f"{p.rsplit('/', 1)[1]}-{f}" for p, _, f, _ in INVALID],
)
def test_invalid_documents_are_400_naming_the_field(
    path: str, body: dict[str, Any], field: str, message: str, server: Server
) -> None:
    error = error_of(server.client().post(path, json=body), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == field, error
    assert message in error["details"][0]["message"], error
    assert field in error["message"]


def test_defaults_of_the_field_tables(server: Server) -> None:
    demo = server.client()
    offer = demo.post("/api/v1/offers", json={"name": "Defaults"}).json()
    assert (offer["priority"], offer["status"]) == (50, "draft")
    creative = demo.post(
        "/api/v1/creatives",
        json={"name": "Defaults", "offerId": offer["id"], "channelId": "ch_web"},
    ).json()
    assert (creative["weight"], creative["templateType"], creative["status"]) == (
        100,
        "email_html",
        "draft",
    )
    channel = demo.post("/api/v1/channels", json={"name": "Defaults"}).json()
    assert (
        channel["channelType"],
        channel["deliveryMode"],
        channel["impressionMode"],
        channel["couplingMode"],
        channel["status"],
    ) == ("email", "api", "explicit", "partial", "draft")
    category = demo.post("/api/v1/categories", json={"name": "Defaults"}).json()
    assert (
        category["color"],
        category["status"],
        category["ordinal"],
        category["customFields"],
    ) == ("blue", "active", 0, [])


def test_duplicates_are_409(server: Server) -> None:
    demo = server.client()
    error = error_of(
        demo.post("/api/v1/offers", json={"name": "BOGO — 5 Day Easy"}), 409, "CONFLICT"
    )
    assert error["details"][0]["field"] == "name" and "off_bogo_5_5d" in error["message"]
    error_of(demo.post("/api/v1/channels", json={"id": "ch_web", "name": "Web 2"}), 409, "CONFLICT")
    error_of(
        demo.post(
            "/api/v1/outcome-types",
            json={"key": "click", "name": "Click", "classification": "positive"},
        ),
        409,
        "CONFLICT",
    )
    error_of(
        demo.post(
            "/api/v1/decision-flows", json={"key": "starbucks-decision-pipeline", "name": "Copy"}
        ),
        409,
        "CONFLICT",
    )
    renamed = demo.patch("/api/v1/offers/off_info_3d", json={"name": "BOGO — 7 Day Easy"})
    error_of(renamed, 409, "CONFLICT")


def test_request_shape_errors(server: Server) -> None:
    demo = server.client()
    error_of(
        demo.post(
            "/api/v1/offers", content=b"[1, 2]", headers={"content-type": "application/json"}
        ),
        400,
        "VALIDATION_ERROR",
    )
    error_of(
        demo.post("/api/v1/offers", content=b"{nope", headers={"content-type": "application/json"}),
        400,
        "VALIDATION_ERROR",
    )
    error_of(
        demo.post(
            "/api/v1/offers", content=b'{"name": NaN}', headers={"content-type": "application/json"}
        ),
        400,
        "VALIDATION_ERROR",
    )
    error_of(
        demo.post("/api/v1/offers", content=b"name=x", headers={"content-type": "text/plain"}),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    error_of(
        demo.patch("/api/v1/offers/off_info_3d", json={"id": "off_info_4d"}),
        400,
        "VALIDATION_ERROR",
    )
    error_of(
        demo.patch("/api/v1/offers/off_info_3d", json={"tenantId": "other"}),
        400,
        "VALIDATION_ERROR",
    )
    error_of(
        demo.patch(
            "/api/v1/offers/off_info_3d", headers={"If-Match": "soon"}, json={"priority": 3}
        ),
        400,
        "VALIDATION_ERROR",
    )
    stale = demo.patch("/api/v1/offers/off_info_3d", json={"priority": 3, "rowVersion": 99})
    error_of(stale, 409, "CONFLICT")
    # read-only fields sent back from a GET are ignored
    offer = demo.get("/api/v1/offers/off_info_3d").json()
    again = demo.put("/api/v1/offers/off_info_3d", json={**offer, "priority": 56})
    assert again.status_code == 200, again.text
    assert again.json()["version"] == offer["version"] + 1
    assert again.json()["createdAt"] == offer["createdAt"]
    assert server.client(tenant=None).get("/api/v1/offers").status_code == 401


def test_outcome_types_system_ones_are_listed_and_protected(server: Server) -> None:
    demo = server.client()
    listed = demo.get("/api/v1/outcome-types", params={"limit": 100}).json()["data"]
    system = {t["key"]: (t["classification"], t["category"]) for t in listed if t["isSystem"]}
    assert system == {
        "impression": ("neutral", "impression"),
        "click": ("positive", "response"),
        "conversion": ("positive", "response"),
        "not_interested": ("negative", "response"),
        "opt_out": ("negative", "response"),
        "defer": ("neutral", "response"),
        "dismiss": ("negative", "response"),
        "share": ("positive", "response"),
        "save": ("positive", "response"),
        "complaint": ("negative", "response"),
    }
    for response in (
        demo.patch("/api/v1/outcome-types/click", json={"classification": "negative"}),
        demo.put(
            "/api/v1/outcome-types/click",
            json={"key": "click", "name": "Click", "classification": "negative"},
        ),
        demo.delete("/api/v1/outcome-types/click"),
    ):
        error = error_of(response, 403, "FORBIDDEN")
        assert "system type" in error["message"]
    assert demo.get("/api/v1/outcome-types/click").json()["version"] == 1
    error_of(
        demo.post(
            "/api/v1/outcome-types",
            json={
                "key": "applied",
                "name": "Applied",
                "classification": "positive",
                "isSystem": True,
            },
        ),
        400,
        "VALIDATION_ERROR",
    )
    custom = demo.post(
        "/api/v1/outcome-types",
        json={"key": "applied", "name": "Applied", "classification": "positive"},
    ).json()
    assert custom["id"] == "applied" and custom["isSystem"] is False
    error = error_of(
        demo.patch("/api/v1/outcome-types/applied", json={"key": "applied_2"}),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "key"


def test_deleting_an_offer_soft_deletes_its_creatives(server: Server) -> None:
    demo = server.client()
    offer = demo.post("/api/v1/offers", json={"name": "Cascade"}).json()
    ids = [
        demo.post(
            "/api/v1/creatives",
            json={"name": f"Cascade {ch}", "offerId": offer["id"], "channelId": ch},
        ).json()["id"]
        for ch in ("ch_web", "ch_email")
    ]
    assert demo.delete(f"/api/v1/offers/{offer['id']}").status_code == 204
    for creative_id in ids:
        error_of(demo.get(f"/api/v1/creatives/{creative_id}"), 404, "NOT_FOUND")
        gone = demo.get(f"/api/v1/creatives/{creative_id}", params={"includeDeleted": True})
        assert gone.json()["deletedAt"] is not None and gone.json()["version"] == 2
    untouched = demo.get("/api/v1/creatives/cr_bogo_5_5d_web")
    assert untouched.status_code == 200 and untouched.json()["deletedAt"] is None


def test_references_to_another_tenants_entities_are_refused(server: Server) -> None:
    demo, other = server.client(), server.client(tenant="other")
    offer = demo.post("/api/v1/offers", json={"name": "Demo only"}).json()
    channel = demo.post("/api/v1/channels", json={"name": "Demo only"}).json()
    for body, named in (
        ({"name": "X", "offerId": offer["id"], "channelId": "ch_web"}, "offerId"),
        ({"name": "X", "offerId": "off_bogo_5_5d", "channelId": channel["id"]}, "channelId"),
    ):
        error = error_of(other.post("/api/v1/creatives", json=body), 400, "VALIDATION_ERROR")
        assert error["details"][0]["field"] == named
    error = error_of(
        other.post(
            "/api/v1/qualification-rules",
            json={
                "name": "X",
                "scope": "offer",
                "scopeId": offer["id"],
                "ruleType": "segment_required",
                "config": {"requiredSegments": []},
            },
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "scopeId"
