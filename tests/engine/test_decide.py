from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.decide import DecisionRequest, Decisions, decide
from engine.errors import NotFoundError, ValidationError
from engine.flow import base_nba_config
from engine.flow.plan import DECISION_SCHEMA
from tests.factories import (
    AS_OF,
    creative,
    customers,
    flow_config,
    flow_doc,
    history,
    interaction,
    make_catalog,
    node,
    offer,
    policy,
    rule,
    simple_catalog,
)

RULES = [rule("adult", "attribute_condition", {"attribute": "age", "operator": "gte", "value": 18})]
POLICIES = [policy("cap", "frequency_cap", {"maxPerDay": 2})]


def _catalog():
    return simple_catalog(rules=RULES, policies=POLICIES)


def _without_index(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("request_index")


def test_result_shape():
    result = decide(
        _catalog(),
        customers({"customer_id": "u1", "age": 30}),
        history(),
        DecisionRequest(customer_id="u1"),
        as_of=AS_OF,
        flow=base_nba_config(),
    )
    assert isinstance(result, Decisions)
    assert result.decisions.schema == pl.Schema(DECISION_SCHEMA)
    assert result.decisions["rank"].to_list() == [1, 2, 3, 4]
    assert result.trace is None and result.trace_records() == []


def test_unknown_customer_is_not_an_error():
    for frame in (None, customers()):
        result = decide(
            _catalog(),
            frame,
            None,
            DecisionRequest(customer_id="ghost"),
            as_of=AS_OF,
            flow=base_nba_config(),
        )
        assert result.decisions["customer_id"].unique().to_list() == ["ghost"]
        assert result.decisions.height == 4


def test_micro_batch_equals_each_request_alone():
    catalog = _catalog()
    people = customers(
        {"customer_id": "u1", "age": 30},
        {"customer_id": "u2", "age": 12},
        {"customer_id": "u3", "age": 50},
    )
    events = history(interaction("u3", "o1", hours_ago=1), interaction("u3", "o2", hours_ago=2))
    requests = [
        DecisionRequest(customer_id="u3", channel="email", limit=3),
        DecisionRequest(customer_id="u1", channel="web", exclude_offers=["o1"]),
        DecisionRequest(customer_id="u2"),
        DecisionRequest(
            customer_id="u1",
            limit=1,
            attributes={"tier": "gold"},
            segments=["vip"],
            exclude_creatives=["c1e"],
        ),
        DecisionRequest(customer_id="ghost"),
    ]
    flow = base_nba_config()
    together = decide(catalog, people, events, requests, as_of=AS_OF, flow=flow)
    for i, req in enumerate(requests):
        alone = decide(catalog, people, events, req, as_of=AS_OF, flow=flow)
        assert_frame_equal(_without_index(together.for_request(i)), _without_index(alone.decisions))
        assert_frame_equal(_without_index(together.funnel[i]), _without_index(alone.funnel))
    assert together.funnel["request_index"].to_list() == [0, 1, 2, 3, 4]
    # base flow: requireCreative false, so o3/o4 ship without a web creative
    assert together.for_request(1)["offer_id"].to_list() == ["o3", "o4", "o2"]
    assert together.for_request(0).height == 0  # u3 hit the cap


def test_shared_template_request_covers_every_customer():
    people = customers(*({"customer_id": f"u{i}", "age": 10 + 5 * i} for i in range(6)))
    result = decide(
        _catalog(),
        people,
        history(),
        DecisionRequest(limit=2, channel="email"),
        as_of=AS_OF,
        flow=base_nba_config(),
    )
    per_customer = result.decisions.group_by("customer_id").len()
    assert sorted(per_customer["customer_id"].to_list()) == ["u2", "u3", "u4", "u5"]
    assert set(per_customer["len"].to_list()) == {2}
    assert result.funnel["customer_id"].to_list() == [f"u{i}" for i in range(6)]


def test_chunked_run_equals_single_run():
    people = customers(*({"customer_id": f"u{i}", "age": 10 + 3 * i} for i in range(7)))
    events = history(
        *(interaction(f"u{i}", "o1", hours_ago=1) for i in range(0, 7, 2)),
        *(interaction(f"u{i}", "o3", hours_ago=3) for i in range(0, 7, 3)),
    )
    one = decide(_catalog(), people, events, DecisionRequest(), as_of=AS_OF, flow=base_nba_config())
    chunked = decide(
        _catalog(),
        people,
        events,
        DecisionRequest(),
        as_of=AS_OF,
        flow=base_nba_config(),
        chunk_size=3,
    )
    assert_frame_equal(one.decisions, chunked.decisions)
    assert_frame_equal(one.funnel, chunked.funnel)
    reqs = [DecisionRequest(customer_id=f"u{i}", limit=2) for i in (6, 1, 4, 0, 9, 2)]
    one = decide(_catalog(), people, events, reqs, as_of=AS_OF, flow=base_nba_config())
    chunked = decide(
        _catalog(), people, events, reqs, as_of=AS_OF, flow=base_nba_config(), chunk_size=4
    )
    assert_frame_equal(one.decisions, chunked.decisions)
    assert_frame_equal(one.funnel, chunked.funnel)


def test_funnel_counts_follow_the_pipeline():
    people = customers({"customer_id": "u1", "age": 12}, {"customer_id": "u2", "age": 30})
    events = history(interaction("u2", "o1", hours_ago=1), interaction("u2", "o2", hours_ago=1))
    result = decide(
        _catalog(),
        people,
        events,
        [DecisionRequest(customer_id="u1"), DecisionRequest(customer_id="u2")],
        as_of=AS_OF,
        flow=base_nba_config(),
    )
    rows = result.funnel.select(
        "candidateCount", "afterQualification", "afterContactPolicy", "finalCount"
    ).rows()
    assert rows == [(4, 0, 0, 0), (4, 4, 0, 0)]


def test_trace_only_for_debug_requests():
    people = customers({"customer_id": "u1", "age": 12}, {"customer_id": "u2", "age": 30})
    reqs = [DecisionRequest(customer_id="u1", debug=True), DecisionRequest(customer_id="u2")]
    result = decide(_catalog(), people, history(), reqs, as_of=AS_OF, flow=base_nba_config())
    records = result.trace_records()
    assert [r["customer_id"] for r in records] == ["u1"]
    assert {q["reason"] for q in records[0]["qualificationResults"]} == {
        "Attribute condition failed: age gte 18"
    }
    assert records[0]["selectedOffers"] == []
    everyone = decide(
        _catalog(), people, history(), reqs, as_of=AS_OF, flow=base_nba_config(), trace=True
    )
    assert [r["customer_id"] for r in everyone.trace_records()] == ["u1", "u2"]
    selected = everyone.trace_records()[1]["selectedOffers"]
    assert [s["offerId"] for s in selected] == ["o1", "o2", "o3", "o4"]


def test_same_customer_twice_in_one_call():
    reqs = [DecisionRequest(customer_id="u1", limit=1), DecisionRequest(customer_id="u1")]
    result = decide(
        _catalog(),
        customers({"customer_id": "u1", "age": 30}),
        history(),
        reqs,
        as_of=AS_OF,
        flow=base_nba_config(),
    )
    assert result.for_request(0).height == 1
    assert result.for_request(1).height == 4


def test_flow_resolution_by_key():
    cfg = flow_config(node("rank", maxCandidates=1))
    catalog = make_catalog(
        offers=[offer("o1"), offer("o2")],
        creatives=[creative("c1", "o1"), creative("c2", "o2")],
        flows=[flow_doc("live", cfg), flow_doc("draft", cfg, status="draft")],
    )
    result = decide(
        catalog, None, None, DecisionRequest(customer_id="u1"), as_of=AS_OF, flow="live"
    )
    assert result.flow_key == "live" and result.flow_version == 1
    assert result.decisions.height == 1
    with pytest.raises(NotFoundError):
        decide(catalog, None, None, DecisionRequest(customer_id="u1"), as_of=AS_OF, flow="draft")
    with pytest.raises(NotFoundError):
        decide(catalog, None, None, DecisionRequest(customer_id="u1"), as_of=AS_OF, flow="nope")


def test_input_validation():
    with pytest.raises(ValidationError, match="customer_id"):
        decide(
            _catalog(),
            pl.DataFrame({"id": ["u1"]}),
            None,
            DecisionRequest(customer_id="u1"),
            as_of=AS_OF,
            flow=base_nba_config(),
        )
    with pytest.raises(ValidationError, match="customer_id"):
        decide(_catalog(), None, None, [DecisionRequest()], as_of=AS_OF, flow=base_nba_config())
    with pytest.raises(ValidationError, match="as_of"):
        decide(
            _catalog(),
            None,
            None,
            DecisionRequest(customer_id="u1"),
            as_of="now",
            flow=base_nba_config(),
        )


def test_naive_as_of_means_utc():
    naive = AS_OF.replace(tzinfo=None)
    a = decide(
        _catalog(),
        None,
        history(interaction("u1", "o1", hours_ago=1)),
        DecisionRequest(customer_id="u1"),
        as_of=naive,
        flow=base_nba_config(),
    )
    b = decide(
        _catalog(),
        None,
        history(interaction("u1", "o1", hours_ago=1)),
        DecisionRequest(customer_id="u1"),
        as_of=AS_OF,
        flow=base_nba_config(),
    )
    assert_frame_equal(a.decisions, b.decisions)


def test_request_from_body_aliases():
    req = DecisionRequest.from_body(
        {
            "customerId": "u1",
            "maxOffers": 3,
            "trace": True,
            "channelId": "ch_web",
            "placements": [{"placementId": "p1", "limit": 2}],
            "deduplicate": True,
            "excludeOffers": ["o1"],
            "attributes": {"tier": "gold"},
            "segments": ["a"],
        }
    )
    assert (req.limit, req.debug, req.channel_id) == (3, True, "ch_web")
    assert req.placements[0].placement_id == "p1" and req.placements[0].limit == 2
    assert req.exclude_offers == ("o1",) and req.segments == ("a",)
    with pytest.raises(ValidationError, match="limit"):
        DecisionRequest.from_body({"customerId": "u1", "limit": 51})
