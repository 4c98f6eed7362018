from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import (
    AS_OF,
    creative,
    decide_one,
    flow_config,
    interaction,
    make_catalog,
    node,
    offer,
    offer_ids,
    policy,
    simple_catalog,
)

FLOW = flow_config(node("enrich"), node("contact_policy"), node("rank", maxCandidates=50))
ALL = ["o1", "o2", "o3", "o4"]


def _run(policies, events=(), customer=None, catalog=None, **request):
    catalog = catalog or simple_catalog(policies=policies)
    return decide_one(
        catalog, FLOW, customer=customer, events=list(events), trace=True, limit=50, **request
    )


def _reasons(result) -> dict[str, str]:
    return {p["offerId"]: p["reason"] for p in result.trace_records()[0]["contactPolicyResults"]}


def _imps(n, offer_id="o1", hours_ago=1.0, **kw):
    return [interaction("u1", offer_id, hours_ago=hours_ago + i * 0.01, **kw) for i in range(n)]


def test_global_frequency_cap_per_day():
    policies = [policy("cap", "frequency_cap", {"maxPerDay": 3})]
    assert offer_ids(_run(policies, _imps(2))) == ALL
    result = _run(policies, _imps(3))
    assert offer_ids(result) == []
    assert set(_reasons(result).values()) == {"frequency_cap exceeded: 3/day at scope=global"}
    assert result.funnel.row(0, named=True)["afterContactPolicy"] == 0
    # yesterday's contacts do not count toward the day
    assert offer_ids(_run(policies, _imps(3, hours_ago=30))) == ALL


def test_weekly_and_monthly_caps():
    policies = [
        policy("cap", "frequency_cap", {"maxPerDay": 5, "maxPerWeek": 4, "maxPerMonth": 10})
    ]
    result = _run(policies, _imps(4, hours_ago=48))
    assert set(_reasons(result).values()) == {"frequency_cap exceeded: 4/week at scope=global"}
    result = _run(policies, _imps(10, hours_ago=24 * 10))
    assert set(_reasons(result).values()) == {"frequency_cap exceeded: 10/month at scope=global"}


def test_legacy_frequency_cap_config():
    policies = [policy("cap", "frequency_cap", {"maxContacts": 3, "windowDays": 7})]
    result = _run(policies, _imps(3, hours_ago=24 * 6))
    assert set(_reasons(result).values()) == {"frequency_cap exceeded: 3/7d at scope=global"}
    assert offer_ids(_run(policies, _imps(3, hours_ago=24 * 8))) == ALL


def test_offer_scoped_cap_counts_and_blocks_that_offer_only():
    policies = [policy("cap", "frequency_cap", {"maxPerDay": 1}, scope="offer", scope_id="o2")]
    assert offer_ids(_run(policies, _imps(3, "o1"))) == ALL
    result = _run(policies, _imps(1, "o2"))
    assert offer_ids(result) == ["o1", "o3", "o4"]
    assert _reasons(result) == {"o2": "frequency_cap exceeded: 1/day at scope=offer:o2"}


def test_non_global_scope_without_id_behaves_as_global():
    catalog = simple_catalog(policies=[policy("cap", "frequency_cap", {"maxPerDay": 1})])
    doc = dict(catalog.contact_policies[0]) | {"scope": "offer"}
    doc.pop("scopeId", None)
    object.__setattr__(catalog, "contact_policies", (doc,))
    assert offer_ids(_run([], _imps(1, "o3"), catalog=catalog)) == []


def test_channel_and_category_scoped_caps():
    policies = [
        policy("cap", "frequency_cap", {"maxPerDay": 1}, scope="channel", scope_id="ch_web")
    ]
    events = _imps(1, "o1", channel_id="ch_web")
    assert offer_ids(_run(policies, events, channel="web")) == []
    assert offer_ids(_run(policies, events, channel="email")) == ALL
    policies = [
        policy("cap", "frequency_cap", {"maxPerDay": 1}, scope="category", scope_id="cat_b")
    ]
    assert offer_ids(_run(policies, _imps(1, "o3"))) == ["o1", "o2"]


def test_cooldown():
    policies = [policy("cd", "cooldown", {"cooldownHours": 24}, scope="offer", scope_id="o1")]
    result = _run(policies, _imps(1, "o1", hours_ago=23))
    assert offer_ids(result) == ["o2", "o3", "o4"]
    assert _reasons(result) == {"o1": "cooldown active: last contact within 24h at scope=offer:o1"}
    assert offer_ids(_run(policies, _imps(1, "o1", hours_ago=25))) == ALL


def test_outcome_based():
    policies = [policy("ob", "outcome_based", {"outcomeType": "complaint", "lookbackDays": 90})]
    events = [interaction("u1", "o2", "complaint", hours_ago=24 * 80)]
    result = _run(policies, events)
    assert offer_ids(result) == []
    assert set(_reasons(result).values()) == {"outcome_based: complaint within 90d at scope=global"}
    events = [interaction("u1", "o2", "complaint", hours_ago=24 * 91)]
    assert offer_ids(_run(policies, events)) == ALL


def test_segment_exclusion():
    policies = [policy("se", "segment_exclusion", {"excludeSegments": ["do_not_contact"]})]
    result = _run(policies, segments=["do_not_contact"])
    assert offer_ids(result) == []
    assert "do_not_contact" in next(iter(_reasons(result).values()))
    assert offer_ids(_run(policies, customer={"segment": "do_not_contact"})) == []
    assert offer_ids(_run(policies, segments=["vip"])) == ALL


@pytest.mark.parametrize(
    ("config", "allowed"),
    [
        ({"allowedDays": [1, 2, 3, 4, 5]}, True),  # AS_OF is a Friday
        ({"allowedDays": [6, 7]}, False),
        ({"allowedHours": {"start": 9, "end": 18}}, True),  # 10:00 UTC
        ({"allowedHours": {"start": 12, "end": 18}}, False),
        ({"allowedHours": {"start": 22, "end": 11}}, True),  # overnight window
        ({"allowedHours": {"start": 9, "end": 11}, "timezone": "America/New_York"}, False),
    ],
)
def test_time_window(config, allowed):
    result = _run([policy("tw", "time_window", config)])
    assert offer_ids(result) == (ALL if allowed else [])
    if not allowed:
        assert set(_reasons(result).values()) == {"time_window: outside the allowed days/hours"}


def test_mutual_exclusion():
    policies = [
        policy(
            "mx", "mutual_exclusion", {"offerIds": ["o1", "o2", "o3"]}, scope="offer", scope_id="o1"
        )
    ]
    policies[0]["scopes"] = [{"scope": "offer", "scopeId": o} for o in ("o1", "o2", "o3")]
    result = _run(policies, _imps(1, "o2", hours_ago=24 * 20))
    assert offer_ids(result) == ["o2", "o4"]
    assert set(_reasons(result)) == {"o1", "o3"}
    assert offer_ids(_run(policies)) == ALL


def test_cross_channel_cap_counts_the_offer_over_all_channels():
    policies = [policy("xc", "cross_channel_cap", {"maxPerDay": 2})]
    events = _imps(1, "o1", channel_id="ch_web") + _imps(1, "o1", channel_id="ch_email")
    result = _run(policies, events)
    assert offer_ids(result) == ["o2", "o3", "o4"]
    assert _reasons(result)["o1"].startswith("cross_channel_cap exceeded: 2/day")


def test_customer_total_cap():
    policies = [policy("tc", "customer_total_cap", {"maxContacts": 5, "windowDays": 30})]
    events = [e for o in ("o1", "o2", "o3", "o4", "o1") for e in _imps(1, o, hours_ago=100)]
    result = _run(policies, events)
    assert offer_ids(result) == []
    assert set(_reasons(result).values()) == {"customer_total_cap exceeded: 5/30d"}


def test_category_suppression():
    policies = [policy("cs", "category_suppression", {"lookbackHours": 48})]
    result = _run(policies, _imps(1, "o1", hours_ago=30))
    assert offer_ids(result) == ["o3", "o4"]
    assert _reasons(result)["o2"] == "category_suppression: category contacted within 48h"
    assert offer_ids(_run(policies, _imps(1, "o1", hours_ago=50))) == ALL


def test_allow_override_bypasses_blocking_policies():
    policies = [
        policy("cap", "frequency_cap", {"maxPerDay": 1}, priority=90),
        policy("ok", "allow_override", {}, scope="offer", scope_id="o3", priority=10),
    ]
    assert offer_ids(_run(policies, _imps(1, "o1"))) == ["o3"]


def test_metric_condition_blocks_when_true():
    policies = [
        policy("mc", "metric_condition", {"metric": "fatigue", "operator": "gt", "value": 0.8})
    ]
    result = _run(policies, customer={"metrics.fatigue": 0.9})
    assert offer_ids(result) == []
    assert set(_reasons(result).values()) == {"metric_condition: metrics.fatigue gt 0.8"}
    assert offer_ids(_run(policies, customer={"metrics.fatigue": 0.2})) == ALL
    assert offer_ids(_run(policies, customer={"age": 3})) == ALL


def test_first_policy_by_priority_is_the_reason():
    policies = [
        policy("low", "cooldown", {"cooldownHours": 48}, priority=10),
        policy("high", "frequency_cap", {"maxPerDay": 1}, priority=90),
    ]
    result = _run(policies, _imps(1, "o1"))
    records = result.trace_records()[0]["contactPolicyResults"]
    assert {r["policyId"] for r in records} == {"high"}


def test_impressions_after_as_of_and_inbound_rows_do_not_count():
    policies = [policy("cap", "frequency_cap", {"maxPerDay": 1})]
    future = [interaction("u1", "o1", at=AS_OF + timedelta(hours=1))]
    assert offer_ids(_run(policies, future)) == ALL
    clicks = [interaction("u1", "o1", "click", hours_ago=1)]
    assert offer_ids(_run(policies, clicks)) == ALL
    other_customer = [interaction("u2", "o1", hours_ago=1)]
    assert offer_ids(_run(policies, other_customer)) == ALL


def _mandatory_catalog(policies):
    return simple_catalog(
        policies=policies,
        extra_offers=[offer("m1", mandatory=True, priority=5)],
        extra_creatives=[creative("cm", "m1")],
    )


def test_mandatory_offers_obey_frequency_cap():
    catalog = _mandatory_catalog([policy("cap", "frequency_cap", {"maxPerDay": 1})])
    assert offer_ids(_run([], _imps(1), catalog=catalog)) == []


def test_mandatory_offers_skip_bypassable_policies():
    catalog = _mandatory_catalog([policy("cd", "cooldown", {"cooldownHours": 24})])
    assert offer_ids(_run([], _imps(1), catalog=catalog)) == ["m1"]
    catalog = _mandatory_catalog(
        [policy("cd", "cooldown", {"cooldownHours": 24, "bypassable": False})]
    )
    assert offer_ids(_run([], _imps(1), catalog=catalog)) == []


def test_mandatory_daily_cap():
    catalog = _mandatory_catalog([])
    events = [interaction("u1", "m1", hours_ago=1 + i) for i in range(5)]
    result = _run([], events, catalog=catalog)
    assert "m1" not in offer_ids(result)
    assert _reasons(result)["m1"] == "mandatory cap reached: 5/day"


def test_offer_frequency_caps_are_hard_constraints():
    catalog = make_catalog(
        offers=[offer("o1", frequencyCaps={"perCustomer": {"daily": 1}}), offer("o2")],
        creatives=[creative("c1", "o1"), creative("c2", "o2")],
    )
    result = _run([], _imps(1, "o1"), catalog=catalog)
    assert offer_ids(result) == ["o2"]
    assert _reasons(result) == {"o1": "offer frequency cap exceeded: 1/day"}


def test_per_offer_cooldown_and_cap():
    policies = [policy("cd", "cooldown", {"cooldownHours": 24, "perOffer": True})]
    result = _run(policies, _imps(1, "o2", hours_ago=5))
    assert offer_ids(result) == ["o1", "o3", "o4"]
    assert _reasons(result) == {
        "o2": "cooldown active: last contact within 24h at scope=global (per offer)"
    }
    policies = [policy("cap", "frequency_cap", {"maxPerDay": 2, "perOffer": True})]
    assert offer_ids(_run(policies, _imps(2, "o3"))) == ["o1", "o2", "o4"]
    policies = [policy("ob", "outcome_based", {"outcomeType": "conversion", "perOffer": True})]
    events = [interaction("u1", "o1", "conversion", hours_ago=3)]
    assert offer_ids(_run(policies, events)) == ["o2", "o3", "o4"]


def test_batch_sized_calls_count_offer_and_category_history_per_customer(monkeypatch):
    """Large calls join offer and category aggregates on integer keys (request index, offer
    order, category index): each customer still gets exactly the answer it gets alone."""
    import polars as pl

    import engine.flow.plan as plan
    from engine.decide import DecisionRequest, decide
    from tests.factories import customers, history

    policies = [
        policy("cs", "category_suppression", {"lookbackHours": 48}),
        policy("cool", "cooldown", {"cooldownHours": 24, "perOffer": True}),
    ]
    catalog = simple_catalog(policies=policies)
    events = [
        interaction("u1", "o1", hours_ago=30),  # cat_a suppressed
        interaction("u2", "o3", hours_ago=2),  # cat_b suppressed, o3 cooling down
        interaction("u3", "o2", hours_ago=60),  # too old for both
        interaction("u3", "o4", hours_ago=3, category_id="cat_b"),  # logged category
    ]
    people = customers(*({"customer_id": f"u{i}"} for i in range(1, 5)))
    alone = {
        cid: offer_ids(decide_one(catalog, FLOW, customer={}, events=events, customer_id=cid))
        for cid in ("u1", "u2", "u3", "u4")
    }
    monkeypatch.setattr(plan, "DIRECT_ROWS", 0)
    together = decide(
        catalog, people, history(*events), DecisionRequest(limit=50), as_of=AS_OF, flow=FLOW
    )
    rows = together.decisions
    got = {
        cid: rows.filter(pl.col("customer_id") == cid).get_column("offer_id").to_list()
        for cid in alone
    }
    assert got == alone
    assert alone["u1"] == ["o3", "o4"] and alone["u2"] == ["o1", "o2"]
    assert alone["u3"] == ["o1", "o2"] and alone["u4"] == ALL
