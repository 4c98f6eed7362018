from __future__ import annotations

from datetime import timedelta

from tests.factories import (
    AS_OF,
    creative,
    decide_one,
    flow_config,
    make_catalog,
    node,
    offer,
    offer_ids,
)


def _catalog(**overrides):
    offers = [
        offer("o1", priority=90, category="cat_a", subCategoryId="sub_a1"),
        offer("o2", priority=80, category="cat_a"),
        offer("o3", priority=70, category="cat_b"),
        offer("o4", priority=60, category="cat_b", status="paused"),
        offer("o5", priority=50, category="cat_b", status="draft"),
    ]
    creatives = [creative(f"c{i}", f"o{i}") for i in range(1, 6)]
    return make_catalog(offers=offers, creatives=creatives, **overrides)


def _flow(**inventory):
    return flow_config(node("inventory", **inventory), node("rank", maxCandidates=50))


def test_scope_all_takes_active_offers_only():
    assert offer_ids(decide_one(_catalog(), _flow(), limit=50)) == ["o1", "o2", "o3"]


def test_include_statuses():
    result = decide_one(_catalog(), _flow(includeStatuses=["active", "paused"]), limit=50)
    assert offer_ids(result) == ["o1", "o2", "o3", "o4"]


def test_category_scope():
    result = decide_one(_catalog(), _flow(scope="category", categoryIds=["cat_b"]), limit=50)
    assert offer_ids(result) == ["o3"]


def test_subcategory_scope():
    result = decide_one(_catalog(), _flow(scope="subcategory", subCategoryIds=["sub_a1"]), limit=50)
    assert offer_ids(result) == ["o1"]


def test_offer_whitelist_bypasses_category_scope():
    flow = _flow(scope="category", categoryIds=["cat_a"], offerIds=["o3", "o2"])
    assert offer_ids(decide_one(_catalog(), flow, limit=50)) == ["o2", "o3"]
    flow = _flow(scope="explicit", offerIds=["o3"])
    assert offer_ids(decide_one(_catalog(), flow, limit=50)) == ["o3"]


def test_schedule_window_against_as_of():
    offers = [
        offer(
            "past",
            schedule={"startDate": "2026-01-01T00:00:00Z", "endDate": "2026-02-01T00:00:00Z"},
        ),
        offer(
            "now", schedule={"startDate": "2026-04-01T00:00:00Z", "endDate": "2026-06-01T00:00:00Z"}
        ),
        offer("future", schedule={"startDate": "2026-06-01T00:00:00Z"}),
        offer("open"),
    ]
    catalog = make_catalog(
        offers=offers, creatives=[creative(f"c_{o['id']}", o["id"]) for o in offers]
    )
    assert sorted(offer_ids(decide_one(catalog, _flow(), limit=50))) == ["now", "open"]
    later = decide_one(catalog, _flow(), limit=50, as_of=AS_OF + timedelta(days=60))
    assert sorted(offer_ids(later)) == ["future", "open"]


def test_exclude_offers_from_request():
    result = decide_one(_catalog(), _flow(), limit=50, exclude_offers=["o1", "o3"])
    assert offer_ids(result) == ["o2"]


def test_out_of_stock_offers_never_ship():
    offers = [
        offer("o1", inventory={"remainingStock": 0}),
        offer("o2", inventory={"remainingStock": 3}),
        offer("o3"),
    ]
    catalog = make_catalog(offers=offers, creatives=[creative(f"c{i}", f"o{i}") for i in (1, 2, 3)])
    assert sorted(offer_ids(decide_one(catalog, _flow(), limit=50))) == ["o2", "o3"]


def test_mandatory_offer_is_first_with_score_one():
    offers = [offer("o1", priority=90), offer("m1", priority=10, mandatory=True)]
    catalog = make_catalog(offers=offers, creatives=[creative("c1", "o1"), creative("cm", "m1")])
    result = decide_one(catalog, _flow(), limit=5)
    rows = result.decisions
    assert rows.get_column("offer_id").to_list() == ["m1", "o1"]
    assert rows.get_column("score").to_list() == [1.0, 0.9]
    assert rows.get_column("mandatory").to_list() == [True, False]


def test_mandatory_offer_still_obeys_schedule():
    offers = [
        offer("o1"),
        offer("m1", mandatory=True, schedule={"startDate": "2026-06-01T00:00:00Z"}),
    ]
    catalog = make_catalog(offers=offers, creatives=[creative("c1", "o1"), creative("cm", "m1")])
    assert offer_ids(decide_one(catalog, _flow())) == ["o1"]
