from __future__ import annotations

import pytest

from engine.errors import ValidationError
from engine.flow import DecisionRequest
from tests.factories import (
    channel,
    creative,
    decide_one,
    flow_config,
    make_catalog,
    node,
    offer,
    offer_ids,
    placement,
)


def _catalog(n_a: int = 4, n_b: int = 4, mandatory: int = 0):
    offers = [offer(f"a{i}", priority=90 - i, category="cat_a") for i in range(n_a)]
    offers += [offer(f"b{i}", priority=80 - i, category="cat_b") for i in range(n_b)]
    offers += [
        offer(f"m{i}", priority=1, category="cat_a", mandatory=True) for i in range(mandatory)
    ]
    return make_catalog(
        offers=offers, creatives=[creative(f"c_{o['id']}", o["id"]) for o in offers]
    )


def _flow(**rank):
    return flow_config(node("rank", **rank), flow_config={"mandatoryDailyCap": 3})


def test_request_limit_and_max_candidates():
    catalog = _catalog()
    assert offer_ids(decide_one(catalog, _flow(), limit=3)) == ["a0", "a1", "a2"]
    assert len(offer_ids(decide_one(catalog, _flow()))) == 5
    assert len(offer_ids(decide_one(catalog, _flow(maxCandidates=2), limit=10))) == 2
    assert offer_ids(decide_one(catalog, _flow(), limit=50)) == [
        "a0",
        "a1",
        "a2",
        "a3",
        "b0",
        "b1",
        "b2",
        "b3",
    ]


def test_limit_is_validated():
    for bad in (0, 51, "5", True):
        with pytest.raises(ValidationError, match="limit"):
            DecisionRequest(customer_id="u1", limit=bad)


def test_diversity_caps_offers_per_category():
    result = decide_one(_catalog(), _flow(method="diversity"), limit=10)
    assert offer_ids(result) == ["a0", "a1", "b0", "b1"]
    result = decide_one(_catalog(), _flow(method="diversity", maxPerCategory=3), limit=10)
    assert offer_ids(result) == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert result.decisions["rank"].to_list() == [1, 2, 3, 4, 5, 6]


def test_tie_break_is_score_then_priority_then_offer_id():
    offers = [
        offer("z", priority=50),
        offer("y", priority=100),
        offer("x", priority=50),
        offer("w", priority=50),
    ]
    creatives = [
        creative("cz", "z"),
        creative("cy", "y", weight=50),
        creative("cx", "x"),
        creative("cw", "w", weight=40),
    ]
    catalog = make_catalog(offers=offers, creatives=creatives)
    result = decide_one(catalog, _flow(), limit=10)
    # y, x, z all score 0.5: y wins on priority, then x before z by id; w scores 0.2
    assert offer_ids(result) == ["y", "x", "z", "w"]
    assert result.decisions["score"].to_list() == pytest.approx([0.5, 0.5, 0.5, 0.2])


def test_one_creative_per_offer():
    catalog = make_catalog(
        offers=[offer("o1", priority=90), offer("o2", priority=10)],
        creatives=[
            creative("c1", "o1"),
            creative("c2", "o1", "ch_web"),
            creative("c3", "o1", weight=90),
            creative("c4", "o2"),
        ],
    )
    result = decide_one(catalog, _flow(), limit=10)
    assert list(
        zip(result.decisions["offer_id"], result.decisions["creative_id"], strict=True)
    ) == [("o1", "c1"), ("o2", "c4")]


def test_mandatory_first_and_capped():
    catalog = _catalog(mandatory=5)
    result = decide_one(catalog, _flow(), limit=5)
    assert offer_ids(result) == ["m0", "m1", "m2", "a0", "a1"]
    assert result.decisions["score"].to_list()[:3] == [1.0, 1.0, 1.0]
    # diversity never removes mandatory offers
    result = decide_one(catalog, _flow(method="diversity"), limit=10)
    assert offer_ids(result) == ["m0", "m1", "m2", "a0", "a1", "b0", "b1"]


def test_empty_result():
    catalog = make_catalog(offers=[offer("o1", status="paused")], creatives=[creative("c1", "o1")])
    result = decide_one(catalog, _flow())
    assert result.decisions.height == 0
    assert result.funnel.row(0, named=True) == {
        "request_index": 0,
        "customer_id": "u1",
        "candidateCount": 0,
        "afterQualification": 0,
        "afterContactPolicy": 0,
        "finalCount": 0,
    }


def _placement_catalog():
    offers = [offer(f"o{i}", priority=90 - i) for i in range(4)]
    creatives = []
    for o in offers:
        creatives.append(creative(f"{o['id']}_hero", o["id"], "ch_web", placement_id="pl_hero"))
        creatives.append(creative(f"{o['id']}_side", o["id"], "ch_web", placement_id="pl_side"))
    return make_catalog(
        offers=offers,
        creatives=creatives,
        channels=[channel("ch_web", "web")],
        placements=[
            placement("pl_hero", "ch_web", max_slots=1),
            placement("pl_side", "ch_web", max_slots=2),
        ],
    )


def _slots(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in result.decisions.iter_rows(named=True):
        out.setdefault(row["slot_placement"], []).append(row["offer_id"])
    return out


MULTI = flow_config(
    node("match_creatives", placementMatchMode="exact"), node("rank"), node("group")
)


def test_multi_placement_without_deduplicate_resolves_in_parallel():
    placements = [{"placementId": "pl_hero", "limit": 2}, {"placementId": "pl_side"}]
    result = decide_one(_placement_catalog(), MULTI, placements=placements)
    assert _slots(result) == {"pl_hero": ["o0", "o1"], "pl_side": ["o0", "o1"]}
    assert result.decisions["creative_id"].to_list() == ["o0_hero", "o1_hero", "o0_side", "o1_side"]
    assert result.decisions["slot"].to_list() == [0, 0, 1, 1]
    assert result.funnel["finalCount"].to_list() == [2]


def test_multi_placement_with_deduplicate_never_repeats_an_offer():
    placements = [{"placementId": "pl_hero", "limit": 2}, {"placementId": "pl_side", "limit": 2}]
    result = decide_one(_placement_catalog(), MULTI, placements=placements, deduplicate=True)
    assert _slots(result) == {"pl_hero": ["o0", "o1"], "pl_side": ["o2", "o3"]}
    assert result.funnel["finalCount"].to_list() == [4]


def test_group_node_deduplicate_overrides_request():
    flow = flow_config(
        node("match_creatives", placementMatchMode="exact"),
        node("rank"),
        node("group", deduplicate=True),
    )
    placements = [{"placementId": "pl_hero"}, {"placementId": "pl_side"}]
    result = decide_one(_placement_catalog(), flow, placements=placements)
    assert _slots(result) == {"pl_hero": ["o0"], "pl_side": ["o1", "o2"]}
