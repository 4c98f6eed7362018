"""Catalog export and import over HTTP: the pack's format, dry runs, all-or-nothing, and a
catalog exported from one tenant making the same decisions in another."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import yaml

from engine.catalog.io import ENTITIES
from pipelines import starbucks
from pipelines.seed import CUSTOMER_SCHEMA, seed_starbucks
from tests.api.conftest import Server, error_of

EXPORT, IMPORT = "/api/v1/catalog/export", "/api/v1/catalog/import"


def test_export_is_the_sample_pack_format(server: Server) -> None:
    exported = server.client().get(EXPORT)
    assert exported.status_code == 200
    bundle = exported.json()
    assert list(bundle) == list(ENTITIES)
    pack = starbucks.load_pack_documents()
    for entity, docs in pack.items():
        if entity != "decision_flows":
            assert bundle[entity] == sorted(docs, key=lambda d: d["id"]), entity
    assert {f["key"] for f in bundle["decision_flows"]} == {
        "starbucks-decision-pipeline",
        "propensity-flow",
        "draft-flow",
    }
    assert bundle["outcome_types"] == []  # the system types are in every tenant
    as_yaml = server.client().get(EXPORT, params={"format": "yaml"})
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.text) == bundle
    error_of(server.client().get(EXPORT, params={"format": "xml"}), 400, "VALIDATION_ERROR")


def test_dry_run_reports_changes_and_writes_nothing(server: Server) -> None:
    demo, bare = server.client(), server.client(tenant="bare")
    bundle = demo.get(EXPORT).json()
    counts = {e: len(bundle[e]) for e in ENTITIES}
    before = bare.get(EXPORT).json()

    dry = bare.post(IMPORT, params={"dryRun": True}, json=bundle)
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert (report["dryRun"], report["applied"]) == (True, False)
    assert report["summary"] == {
        e: {"created": n, "updated": 0, "unchanged": 0} for e, n in counts.items()
    }
    assert sorted(report["changes"]["offers"]["created"]) == sorted(
        o["id"] for o in bundle["offers"]
    )
    assert bare.get(EXPORT).json() == before
    assert bare.get("/api/v1/offers").json()["pagination"]["total"] == 0

    applied = bare.post(IMPORT, json=bundle).json()
    assert applied["applied"] is True and applied["summary"] == report["summary"]
    assert bare.get(EXPORT).json() == bundle  # ids and documents preserved

    again = bare.post(IMPORT, json=bundle).json()
    assert again["summary"] == {
        e: {"created": 0, "updated": 0, "unchanged": n} for e, n in counts.items()
    }

    changed = copy.deepcopy(bundle)
    changed["offers"][0]["priority"] = 3
    changed["categories"].append({"id": "cat_new", "name": "New"})
    preview = bare.post(IMPORT, params={"dryRun": "true"}, json=changed).json()
    assert preview["changes"]["offers"]["updated"] == [changed["offers"][0]["id"]]
    assert preview["changes"]["categories"]["created"] == ["cat_new"]
    assert bare.get(f"/api/v1/offers/{changed['offers'][0]['id']}").json()["version"] == 1
    done = bare.post(
        IMPORT, content=yaml.safe_dump(changed), headers={"content-type": "application/yaml"}
    ).json()
    assert done["summary"] == preview["summary"]
    offer = bare.get(f"/api/v1/offers/{changed['offers'][0]['id']}").json()
    assert (offer["priority"], offer["version"]) == (3, 2)


def test_import_is_all_or_nothing(server: Server) -> None:
    other = server.client(tenant="other")
    before = other.get(EXPORT).json()
    bundle = {
        "categories": [{"id": "cat_fresh", "name": "Fresh"}],
        "offers": [{"id": "off_fresh", "name": "Fresh", "categoryId": "cat_fresh"}],
        "creatives": [
            {"id": "cr_fresh", "name": "Fresh", "offerId": "off_missing", "channelId": "ch_web"}
        ],
    }
    for params in ({}, {"dryRun": True}):
        error = error_of(other.post(IMPORT, params=params, json=bundle), 400, "VALIDATION_ERROR")
        assert error["details"][0]["field"] == "creatives.0.offerId"
        assert error["message"].startswith("creatives[cr_fresh]: ")
    assert other.get(EXPORT).json() == before
    error_of(other.get("/api/v1/categories/cat_fresh"), 404, "NOT_FOUND")

    # references may point at documents created earlier in the same import
    bundle["creatives"][0]["offerId"] = "off_fresh"
    bundle["qualification_rules"] = [
        {
            "id": "qr_fresh",
            "name": "Fresh gate",
            "scope": "offer",
            "scopeId": "off_fresh",
            "ruleType": "attribute_condition",
            "config": {"attribute": "customer.age", "operator": "gte", "value": 21},
        }
    ]
    assert other.post(IMPORT, json=bundle).status_code == 200
    assert other.get("/api/v1/creatives/cr_fresh").json()["offerId"] == "off_fresh"


def test_import_refusals(server: Server) -> None:
    other = server.client(tenant="other")
    flows = other.get(EXPORT).json()["decision_flows"]
    rewritten = copy.deepcopy(flows[0])
    rewritten["publishedVersions"][0]["notes"] = "history rewritten"
    error = error_of(other.post(IMPORT, json={"decision_flows": [rewritten]}), 409, "CONFLICT")
    assert error["details"][0]["field"] == "decision_flows.0.publishedVersions"
    appended = copy.deepcopy(flows[0])
    appended["publishedVersions"].append(
        {**appended["publishedVersions"][0], "version": 2, "notes": "second"}
    )
    assert other.post(IMPORT, json={"decision_flows": [appended]}).json()["summary"][
        "decision_flows"
    ] == {"created": 0, "updated": 1, "unchanged": 0}

    system = {"key": "click", "name": "Clicked!", "classification": "negative"}
    error_of(other.post(IMPORT, json={"outcome_types": [system]}), 403, "FORBIDDEN")
    same = {"key": "click", "name": "Click", "classification": "positive"}
    assert (
        other.post(IMPORT, json={"outcome_types": [same]}).json()["summary"]["outcome_types"][
            "unchanged"
        ]
        == 1
    )

    error = error_of(other.post(IMPORT, json={"widgets": []}), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "widgets"
    error_of(other.post(IMPORT, json={"offers": {"id": "x"}}), 400, "VALIDATION_ERROR")
    error_of(other.post(IMPORT, json=[1]), 400, "VALIDATION_ERROR")
    big = yaml.safe_dump({"offers": [{"id": "off_big", "name": "Big", "metadata": {"n": 10**30}}]})
    error = error_of(
        other.post(IMPORT, content=big, headers={"content-type": "text/yaml"}),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "offers.0.metadata.n"
    bomb = (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "offers: [*i]\n"
    )
    error = error_of(
        other.post(IMPORT, content=bomb, headers={"content-type": "text/yaml"}),
        400,
        "VALIDATION_ERROR",
    )
    assert "too large" in error["message"]
    error_of(
        other.post(IMPORT, content="offers: [", headers={"content-type": "text/yaml"}),
        400,
        "VALIDATION_ERROR",
    )
    error_of(
        other.post(IMPORT, content="<xml/>", headers={"content-type": "text/xml"}),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    deleted = other.post("/api/v1/categories", json={"id": "cat_gone", "name": "Gone"})
    other.delete(f"/api/v1/categories/{deleted.json()['id']}")
    error = error_of(
        other.post(IMPORT, json={"categories": [{"id": "cat_gone", "name": "G"}]}), 409, "CONFLICT"
    )
    assert "deleted" in error["message"]


def _add_key(server: Server, tenant: str) -> None:
    store = server.runtime.store
    record, raw = store.api_keys.create(tenant, name="test")
    server.runtime.keys.add(tenant, record.id, store.api_keys.hash(raw), None, ())
    server.keys[tenant] = raw


def test_an_exported_catalog_makes_the_same_decisions_in_a_fresh_tenant(server: Server) -> None:
    store = server.runtime.store
    as_of = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    seed_starbucks(store, "src", customers=30, as_of=as_of, seed=7, history_per_customer=6)
    store.tenants.create("dst")
    people = starbucks.generate_customers(30, seed=7)
    store.customers.load("dst", CUSTOMER_SCHEMA, people)
    store.interactions.append(
        "dst",
        starbucks.generate_history(
            people, starbucks.load_pack_documents(), days=90, as_of=as_of, seed=7, per_customer=6
        ),
    )
    for tenant in ("src", "dst"):
        _add_key(server, tenant)
    src, dst = server.client(tenant="src"), server.client(tenant="dst")

    # make the source catalog differ from the pack, through the API
    src.post(
        "/api/v1/offers",
        json={
            "id": "off_autumn",
            "name": "Autumn",
            "status": "active",
            "priority": 90,
            "categoryId": "cat_engagement",
        },
    )
    for channel in ("ch_email", "ch_social"):
        src.post(
            "/api/v1/creatives",
            json={
                "name": f"Autumn {channel}",
                "offerId": "off_autumn",
                "channelId": channel,
                "status": "active",
                "weight": 70,
                "content": {"headline": "{{greeting}} Autumn is here"},
                "personalization": [{"variable": "greeting", "source": "personalization.greeting"}],
            },
        )
    src.patch("/api/v1/offers/off_discount_7_7d", json={"priority": 20})
    src.post(
        "/api/v1/qualification-rules",
        json={
            "name": "Income 45k for autumn",
            "scope": "offer",
            "scopeId": "off_autumn",
            "ruleType": "attribute_condition",
            "config": {"attribute": "customer.income", "operator": "gte", "value": 45000},
        },
    )
    src.post(
        "/api/v1/contact-policies",
        json={
            "name": "Two a day",
            "scope": "global",
            "ruleType": "frequency_cap",
            "config": {"maxPerDay": 2},
            "priority": 95,
        },
    )
    src.patch("/api/v1/decision-flows/flow_starbucks", json={"description": "tuned"})
    assert (
        src.post("/api/v1/decision-flows/flow_starbucks/publish", json={"notes": "v2"}).status_code
        == 200
    )

    bundle = src.get(EXPORT).json()
    imported = dst.post(
        IMPORT, content=orjson.dumps(bundle), headers={"content-type": "application/json"}
    )
    assert imported.status_code == 200, imported.text
    assert dst.get(EXPORT).json() == bundle

    compared, autumn = 0, 0
    for i in range(1, 21):
        body: dict[str, Any] = {
            "customerId": f"SBX-{i:06d}",
            "limit": 4,
            "channel": ("email", "web", "social", "push")[i % 4],
        }
        if i % 5 == 0:
            body["placement"] = "pl_web_hero"
        answers = [c.post("/api/v1/recommend", json=body) for c in (src, dst)]
        decisions = []
        for answer in answers:
            assert answer.status_code == 200, answer.text
            decisions.append(
                [
                    {k: v for k, v in d.items() if k not in ("interactionId", "recommendationId")}
                    for d in answer.json()["decisions"]
                ]
            )
        assert decisions[0] == decisions[1], body
        compared += len(decisions[0])
        autumn += sum(d["offerId"] == "off_autumn" for d in decisions[0])
    assert compared > 20 and autumn > 0
