"""End to end on the Starbucks sample pack and its default flow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.catalog import build_catalog
from engine.catalog.documents import ENTITY_MODELS
from engine.decide import DecisionRequest, decide
from engine.flow import runnable_config
from engine.scoring import compute_evidence
from tests.factories import history, interaction

starbucks = pytest.importorskip("pipelines.starbucks")

FLOW = "starbucks-decision-pipeline"
AS_OF = datetime(2026, 5, 1, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def docs():
    return starbucks.load_pack_documents()


@pytest.fixture(scope="module")
def catalog(docs):
    return build_catalog("starbucks", 1, docs)


@pytest.fixture(scope="module")
def people():
    raw = starbucks.generate_customers(300, seed=7)
    return raw.rename({c: f"customer.{c}" for c in raw.columns if c != "customer_id"})


@pytest.fixture(scope="module")
def events(docs, people):
    plain = people.rename({c: c.removeprefix("customer.") for c in people.columns})
    return starbucks.generate_history(plain, docs, days=90, as_of=AS_OF, seed=7)


def _member(**attrs) -> pl.DataFrame:
    row = {
        "customer_id": "SBX-TEST",
        "customer.age": 35,
        "customer.income": 80_000.0,
        "customer.tier": "gold",
        "customer.first_name": "Ana",
    } | attrs
    return pl.DataFrame([row])


def test_pack_flow_validates(catalog):
    version, config = runnable_config(catalog.flow_by_key(FLOW))
    assert version == 1
    assert [n["type"] for n in config["nodes"]][:2] == ["inventory", "match_creatives"]


def test_adult_member_gets_offers_with_personalization(catalog):
    result = decide(
        catalog,
        _member(),
        history(),
        DecisionRequest(customer_id="SBX-TEST"),
        as_of=AS_OF,
        flow=FLOW,
    )
    assert 1 <= result.decisions.height <= 5
    assert result.decisions["category_name"].value_counts()["count"].max() <= 2  # diversity
    for row in result.decisions.iter_rows(named=True):
        assert isinstance(json.loads(row["content"]), dict)
        personalization = json.loads(row["personalization"])
        if row["category_name"] == "Engagement":
            assert personalization["greeting"] == "Hi Ana!"


def test_minor_never_gets_age_gated_offers(catalog):
    result = decide(
        catalog,
        _member(**{"customer.age": 17}),
        history(),
        DecisionRequest(customer_id="SBX-TEST", debug=True),
        as_of=AS_OF,
        flow=FLOW,
    )
    assert result.decisions.height == 0
    trace = result.trace_records()[0]
    assert trace["candidateCount"] > 0 and trace["afterQualification"] == 0
    reasons = {q["reason"] for q in trace["qualificationResults"] if not q["passed"]}
    assert reasons == {"Attribute condition failed: customer.age gte 18"}


def test_hard_bogo_needs_high_income(catalog):
    rich = decide(
        catalog,
        _member(),
        history(),
        DecisionRequest(customer_id="SBX-TEST", limit=50, channel="email"),
        as_of=AS_OF,
        flow=FLOW,
        trace=True,
    )
    modest = decide(
        catalog,
        _member(**{"customer.income": 40_000.0}),
        history(),
        DecisionRequest(customer_id="SBX-TEST", limit=50, channel="email"),
        as_of=AS_OF,
        flow=FLOW,
        trace=True,
    )
    scored_rich = {s["offerId"] for s in rich.trace_records()[0]["scoringResults"]}
    scored_modest = {s["offerId"] for s in modest.trace_records()[0]["scoringResults"]}
    assert "off_bogo_10_5d" in scored_rich
    assert scored_rich - scored_modest == {"off_bogo_10_5d"}


def test_three_impressions_today_cap_everything(catalog):
    today = [
        interaction(
            "SBX-TEST", f"off_info_{d}d", at=AS_OF - timedelta(hours=h), channel_id="ch_email"
        )
        for d, h in ((3, 1), (4, 2), (3, 5))
    ]
    result = decide(
        catalog,
        _member(),
        history(*today),
        DecisionRequest(customer_id="SBX-TEST", debug=True),
        as_of=AS_OF,
        flow=FLOW,
    )
    assert result.decisions.height == 0
    trace = result.trace_records()[0]
    reasons = {p["reason"] for p in trace["contactPolicyResults"]}
    assert reasons == {"frequency_cap exceeded: 3/day at scope=global"}
    assert trace["afterQualification"] > 0 and trace["afterContactPolicy"] == 0


def test_mandatory_offer_comes_first_with_score_one(docs):
    changed = dict(docs)
    changed["offers"] = [
        ENTITY_MODELS["offers"].model_validate(o | {"mandatory": True}).dump()
        if o["id"] == "off_info_3d"
        else o
        for o in docs["offers"]
    ]
    catalog = build_catalog("starbucks", 2, changed)
    result = decide(
        catalog,
        _member(),
        history(),
        DecisionRequest(customer_id="SBX-TEST"),
        as_of=AS_OF,
        flow=FLOW,
    )
    first = result.decisions.row(0, named=True)
    assert (first["offer_id"], first["score"], first["mandatory"]) == ("off_info_3d", 1.0, True)
    assert result.decisions.filter(~pl.col("mandatory"))["score"].max() < 1.0


def test_batch_equals_one_by_one(catalog, people, events):
    evidence = compute_evidence(catalog, events, as_of=AS_OF)
    batch = decide(
        catalog,
        people,
        events,
        DecisionRequest(channel="email", limit=3),
        as_of=AS_OF,
        flow=FLOW,
        evidence=evidence,
    )
    assert batch.decisions["customer_id"].n_unique() > 200
    for i in range(0, people.height, 23):
        cid = people["customer_id"][i]
        alone = decide(
            catalog,
            people.filter(pl.col("customer_id") == cid),
            events.filter(pl.col("customer_id") == cid),
            DecisionRequest(customer_id=cid, channel="email", limit=3),
            as_of=AS_OF,
            flow=FLOW,
            evidence=evidence,
        )
        assert_frame_equal(
            batch.for_request(i).drop("request_index"), alone.decisions.drop("request_index")
        )


def test_large_call_shape_renders_the_same(catalog, people, events, monkeypatch):
    """Batch-sized calls render content vectorized after a late join of the wide columns;
    small calls assemble it in Python. Both must give the same frame."""
    import engine.flow.plan as plan

    evidence = compute_evidence(catalog, events, as_of=AS_OF)
    reqs = [
        DecisionRequest(customer_id=cid, channel="email" if i % 2 else None)
        for i, cid in enumerate(people["customer_id"][:40])
    ]
    template = DecisionRequest(channel="web", limit=3)
    small = decide(catalog, people, events, reqs, as_of=AS_OF, flow=FLOW, evidence=evidence)
    small_t = decide(catalog, people, events, template, as_of=AS_OF, flow=FLOW, evidence=evidence)
    monkeypatch.setattr(plan, "DIRECT_ROWS", 0)
    large = decide(catalog, people, events, reqs, as_of=AS_OF, flow=FLOW, evidence=evidence)
    large_t = decide(catalog, people, events, template, as_of=AS_OF, flow=FLOW, evidence=evidence)
    assert_frame_equal(small.decisions, large.decisions)
    assert_frame_equal(small.funnel, large.funnel)
    assert_frame_equal(small_t.decisions, large_t.decisions)
    assert small.decisions["content"].null_count() == 0
