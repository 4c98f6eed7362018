from __future__ import annotations

import pytest

from tests.factories import (
    creative,
    decide_one,
    flow_config,
    interaction,
    make_catalog,
    node,
    offer,
    offer_ids,
    rule,
    simple_catalog,
)

FLOW = flow_config(node("enrich"), node("qualify"), node("rank", maxCandidates=50))
ALL = ["o1", "o2", "o3", "o4"]


def _run(rules, customer=None, trace=False, **request):
    return decide_one(
        simple_catalog(rules=rules), FLOW, customer=customer, trace=trace, limit=50, **request
    )


def _age_rule(op, value, attribute="age", **kw):
    return rule(
        "r_age",
        "attribute_condition",
        {"attribute": attribute, "operator": op, "value": value},
        **kw,
    )


@pytest.mark.parametrize(
    ("op", "value", "age", "passes"),
    [
        ("eq", 30, 30, True),
        ("eq", 30, 31, False),
        ("neq", 30, 31, True),
        ("neq", 30, 30, False),
        ("gt", 18, 19, True),
        ("gt", 18, 18, False),
        ("gte", 18, 18, True),
        ("gte", 18, 17, False),
        ("lt", 18, 17, True),
        ("lt", 18, 18, False),
        ("lte", 18, 18, True),
        ("lte", 18, 19, False),
        ("in", [20, 30], 30, True),
        ("in", [20, 30], 31, False),
        ("not_in", [20, 30], 31, True),
        ("not_in", [20, 30], 30, False),
        ("exists", None, 5, True),
        ("not_exists", None, 5, False),
    ],
)
def test_attribute_operators(op, value, age, passes):
    result = _run([_age_rule(op, value)], customer={"age": age})
    assert offer_ids(result) == (ALL if passes else [])


@pytest.mark.parametrize(
    ("op", "passes"),
    [("gte", True), ("lt", True), ("in", True), ("exists", False), ("not_exists", True)],
)
def test_missing_attribute_passes_except_exists(op, passes):
    value = [1] if op == "in" else 18
    result = _run([_age_rule(op, value)], customer={"income": 50_000})
    assert offer_ids(result) == (ALL if passes else [])


def test_unknown_customer_passes_attribute_rules():
    assert offer_ids(_run([_age_rule("gte", 18)], customer=None)) == ALL


@pytest.mark.parametrize("attribute", ["age", "customer.age", "starbucks_customers.age"])
def test_attribute_name_resolution(attribute):
    result = _run([_age_rule("gte", 18, attribute=attribute)], customer={"age": 17})
    assert offer_ids(result) == []


def test_request_attributes_are_read_and_customer_wins():
    rules = [_age_rule("gte", 18, attribute="attributes.age")]
    assert offer_ids(_run(rules, attributes={"age": 17})) == []
    assert offer_ids(_run(rules, attributes={"age": 40})) == ALL
    # bare name: customer.age first, then attributes.age
    rules = [_age_rule("gte", 18)]
    assert offer_ids(_run(rules, customer={"age": 40}, attributes={"age": 10})) == ALL
    assert offer_ids(_run(rules, customer=None, attributes={"age": 10})) == []


def test_string_values_and_lists():
    rules = [
        rule(
            "tier",
            "attribute_condition",
            {"attribute": "attributes.tier", "operator": "in", "value": ["gold", "platinum"]},
        )
    ]
    assert offer_ids(_run(rules, attributes={"tier": "gold"})) == ALL
    assert offer_ids(_run(rules, attributes={"tier": "silver"})) == []


def test_segment_required():
    rules = [rule("seg", "segment_required", {"requiredSegments": ["a", "b"]})]
    result = _run(rules, segments=["a"], trace=True)
    assert offer_ids(result) == []
    reasons = {q["reason"] for q in result.trace_records()[0]["qualificationResults"]}
    assert reasons == {"Missing required segments: b"}
    assert offer_ids(_run(rules, segments=["b", "a", "c"])) == ALL
    # enriched customer.segment counts too
    assert offer_ids(_run(rules, customer={"segment": "b"}, segments=["a"])) == ALL


def test_segment_required_empty_list_passes():
    rules = [rule("seg", "segment_required", {"requiredSegments": []})]
    assert offer_ids(_run(rules)) == ALL


def test_scopes_limit_where_a_rule_applies():
    cases = {
        ("category", "cat_b"): ["o1", "o2"],
        ("offer", "o2"): ["o1", "o3", "o4"],
        ("creative", "c3e"): ["o1", "o2", "o4"],
        ("channel", "ch_web"): ["o3", "o4"],  # o1/o2 only drop via their web creatives
    }
    for (scope, scope_id), expected in cases.items():
        rules = [_age_rule("gte", 18, scope=scope, scope_id=scope_id)]
        kwargs = {"channel": "web"} if scope == "channel" else {}
        result = _run(rules, customer={"age": 10}, **kwargs)
        if scope == "channel":
            assert offer_ids(result) == []  # web creatives only: all blocked
            result = _run(rules, customer={"age": 10}, channel="email")
            expected = ALL
        assert offer_ids(result) == expected, (scope, scope_id)


def test_segment_scope_and_scopes_list():
    rules = [_age_rule("gte", 18, scope="segment", scope_id="teen")]
    assert offer_ids(_run(rules, customer={"age": 10})) == ALL
    assert offer_ids(_run(rules, customer={"age": 10}, segments=["teen"])) == []
    rules = [
        _age_rule(
            "gte",
            18,
            scopes=[{"scope": "offer", "scopeId": "o1"}, {"scope": "offer", "scopeId": "o4"}],
        )
    ]
    assert offer_ids(_run(rules, customer={"age": 10})) == ["o2", "o3"]


def test_soft_match_rule_multiplies_fit_by_decay():
    rules = [_age_rule("gte", 18, stage="match")]
    result = _run(rules, customer={"age": 10})
    assert offer_ids(result) == ALL
    assert result.decisions["score"].to_list() == pytest.approx([0.4, 0.35, 0.3, 0.25])
    rules = [
        rule(
            "r",
            "attribute_condition",
            {"attribute": "age", "operator": "gte", "value": 18, "decay": 0.8},
            stage="match",
        )
    ]
    result = _run(rules, customer={"age": 10})
    assert result.decisions["score"].to_list() == pytest.approx([0.64, 0.56, 0.48, 0.4])


def test_decay_is_clamped_and_ranking_stage_is_ignored():
    rules = [
        rule(
            "r",
            "attribute_condition",
            {"attribute": "age", "operator": "gte", "value": 18, "decay": 0.01},
            stage="match",
        )
    ]
    assert _run(rules, customer={"age": 10}).decisions["score"][0] == pytest.approx(0.08)
    assert offer_ids(_run([_age_rule("gte", 18, stage="ranking")], customer={"age": 10})) == ALL


def test_fit_stage_is_hard_and_legacy_names_map():
    assert offer_ids(_run([_age_rule("gte", 18, stage="fit")], customer={"age": 10})) == []


def test_first_failing_hard_rule_is_the_reason_and_short_circuits():
    rules = [
        rule(
            "high",
            "attribute_condition",
            {"attribute": "age", "operator": "gte", "value": 18},
            priority=90,
        ),
        rule(
            "low",
            "attribute_condition",
            {"attribute": "income", "operator": "gte", "value": 1000},
            priority=10,
        ),
    ]
    result = _run(rules, customer={"age": 10, "income": 5}, trace=True)
    trace = result.trace_records()[0]
    for_o1 = [q for q in trace["qualificationResults"] if q["creativeId"] == "c1e"]
    assert [(q["ruleId"], q["passed"]) for q in for_o1] == [("high", False)]
    assert for_o1[0]["reason"] == "Attribute condition failed: age gte 18"
    result = _run(rules, customer={"age": 30, "income": 5}, trace=True)
    for_o1 = [
        q for q in result.trace_records()[0]["qualificationResults"] if q["creativeId"] == "c1e"
    ]
    assert [(q["ruleId"], q["passed"]) for q in for_o1] == [("high", True), ("low", False)]


def test_metric_condition_reads_metrics_columns():
    rules = [rule("m", "metric_condition", {"metric": "ctr_30d", "operator": "gte", "value": 0.1})]
    assert offer_ids(_run(rules, customer={"metrics.ctr_30d": 0.05})) == []
    assert offer_ids(_run(rules, customer={"metrics.ctr_30d": 0.2})) == ALL
    assert offer_ids(_run(rules, customer={"metrics.ctr_30d": None})) == ALL
    assert offer_ids(_run(rules, customer={"age": 3})) == ALL


def test_propensity_threshold_uses_adaptive_propensity():
    # o1 (cat_a): 6/60 positive -> 0.1; o3 (cat_b): 40/60 -> 0.67; o2 and o4 take their
    # category's rate as prior (0.1 and 0.67)
    events = [
        interaction("x", "o1", "click" if i < 6 else "dismiss", hours_ago=100 + i)
        for i in range(60)
    ]
    events += [
        interaction("x", "o3", "click" if i < 40 else "dismiss", hours_ago=100 + i)
        for i in range(60)
    ]
    catalog = simple_catalog(
        rules=[rule("p", "propensity_threshold", {"minPropensity": 0.2}, stage="eligibility")]
    )
    result = decide_one(catalog, FLOW, events=events, limit=50)
    assert offer_ids(result) == ["o3", "o4"]
    # default stage of propensity_threshold is match (soft)
    catalog = simple_catalog(rules=[rule("p", "propensity_threshold", {"minPropensity": 0.2})])
    result = decide_one(catalog, FLOW, events=events, limit=50)
    assert result.decisions.filter(result.decisions["offer_id"] == "o1")["score"].item() == (
        pytest.approx(0.4)
    )


def test_offer_level_propensity_threshold_overrides_rule():
    catalog = make_catalog(
        offers=[offer("o1", propensityThreshold=0.9), offer("o2")],
        creatives=[creative("c1", "o1"), creative("c2", "o2")],
        rules=[rule("p", "propensity_threshold", {"minPropensity": 0.1}, stage="eligibility")],
    )
    assert offer_ids(decide_one(catalog, FLOW)) == ["o2"]


def test_recency_check():
    rules = [rule("rec", "recency_check", {"minDaysSinceLastContact": 2}, stage="eligibility")]
    events = [interaction("u1", "o1", hours_ago=24), interaction("u1", "o2", hours_ago=72)]
    result = decide_one(simple_catalog(rules=rules), FLOW, events=events, limit=50)
    assert offer_ids(result) == ["o2", "o3", "o4"]
    rules = [
        rule(
            "rec",
            "recency_check",
            {"maxDaysSinceLastContact": 2, "level": "customer"},
            stage="eligibility",
        )
    ]
    result = decide_one(simple_catalog(rules=rules), FLOW, events=events[1:], limit=50)
    assert offer_ids(result) == []


def test_unknown_rule_type_does_not_pass():
    bad = rule("r", "segment_required", {"requiredSegments": []})
    catalog = simple_catalog(rules=[bad])
    object.__setattr__(catalog, "qualification_rules", (bad | {"ruleType": "offer_attribute"},))
    assert offer_ids(decide_one(catalog, FLOW)) == []


def test_inactive_rules_are_skipped():
    assert offer_ids(_run([_age_rule("gte", 18, status="paused")], customer={"age": 1})) == ALL


def test_mandatory_offers_skip_qualification():
    catalog = simple_catalog(
        rules=[_age_rule("gte", 18)],
        extra_offers=[offer("m1", mandatory=True, priority=10)],
        extra_creatives=[creative("cm", "m1")],
    )
    result = decide_one(catalog, FLOW, customer={"age": 10})
    assert offer_ids(result) == ["m1"]
    assert result.decisions["score"].to_list() == [1.0]


def test_without_enrich_node_customer_attributes_are_not_read():
    flow = flow_config(node("qualify"), node("rank", maxCandidates=50))
    rules = [_age_rule("gte", 18)]
    result = decide_one(simple_catalog(rules=rules), flow, customer={"age": 10}, limit=50)
    assert offer_ids(result) == ALL  # no enrich: age is unknown, so the rule passes
