"""Qualification rules and contact policies over HTTP: configs validated per ruleType, scope
references, priorities and defaults, the stage filter."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Server, error_of

RULES = "/api/v1/qualification-rules"
POLICIES = "/api/v1/contact-policies"


def _rule(rule_type: str, config: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"{rule_type} {len(str(config))} {sorted(extra)}",
        "status": "paused",
        "ruleType": rule_type,
        "config": config,
        **extra,
    }


def _policy(rule_type: str, config: Any, **extra: Any) -> dict[str, Any]:
    return {"scope": "global", **_rule(rule_type, config), **extra}


BAD_RULES = [
    (
        "attribute_condition",
        {"attribute": "customer.age", "operator": "gte"},
        "config.value",
        "a value is required for operator 'gte'",
    ),
    (
        "attribute_condition",
        {"attribute": "customer.age", "value": 18},
        "config.operator",
        "field required",
    ),
    (
        "attribute_condition",
        {"operator": "eq", "value": 1},
        "config.attribute",
        "attribute is required",
    ),
    (
        "attribute_condition",
        {"attribute": "a", "operator": "about", "value": 1},
        "config.operator",
        "unknown operator 'about'",
    ),
    (
        "attribute_condition",
        {"attribute": "a", "operator": "in", "value": 3},
        "config.value",
        "non-empty list",
    ),
    (
        "attribute_condition",
        {"attribute": "a", "operator": "gte", "value": [1]},
        "config.value",
        "not a list",
    ),
    (
        "attribute_condition",
        {"attribute": "a", "operator": "eq", "value": 1, "vlaue": 2},
        "config.vlaue",
        "unknown field for ruleType 'attribute_condition'",
    ),
    ("segment_required", {}, "config.requiredSegments", "field required"),
    ("segment_required", {"requiredSegments": "gold"}, "config.requiredSegments", "valid list"),
    (
        "propensity_threshold",
        {"minPropensity": 1.5},
        "config.minPropensity",
        "less than or equal to 1",
    ),
    ("propensity_threshold", {}, "config.minPropensity", "minPropensity is required"),
    ("recency_check", {"level": "offer"}, "config.minDaysSinceLastContact", "set a bound"),
    (
        "recency_check",
        {"minDaysSinceLastContact": 5, "maxDaysSinceLastContact": 1},
        "config.maxDaysSinceLastContact",
        "below the minimum",
    ),
    ("metric_condition", {"operator": "gt", "value": 3}, "config.metric", "metric is required"),
]


@pytest.mark.parametrize(("rule_type", "config", "field", "message"), BAD_RULES)
def test_rule_configs_are_validated_per_rule_type(
    rule_type: str, config: dict[str, Any], field: str, message: str, server: Server
) -> None:
    error = error_of(
        server.client().post(RULES, json=_rule(rule_type, config)), 400, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == field, error
    assert message in error["details"][0]["message"], error


GOOD_RULES = [
    (
        "attribute_condition",
        {"attribute": "starbucks_customers.age", "operator": "gte", "value": 18},
    ),
    ("attribute_condition", {"attribute": "customer.income", "operator": "exists"}),
    ("attribute_condition", {"field": "tier", "operator": "in", "value": ["gold", "silver"]}),
    ("attribute_condition", {"attribute": "age", "operator": ">=", "value": 21}),
    ("segment_required", {"requiredSegments": []}),
    ("propensity_threshold", {"minPropensity": 0.2, "decay": 0.5}),
    ("recency_check", {"minHoursSinceLastContact": 12, "level": "customer"}),
    ("metric_condition", {"metric": "clicks_7d", "operator": "lt", "value": 5}),
]


@pytest.mark.parametrize(("rule_type", "config"), GOOD_RULES)
def test_valid_rule_configs_are_stored_as_sent(
    rule_type: str, config: dict[str, Any], server: Server
) -> None:
    created = server.client().post(RULES, json=_rule(rule_type, config))
    assert created.status_code == 201, created.text
    assert created.json()["config"] == config


BAD_POLICIES = [
    ("frequency_cap", {}, "config.maxPerDay", "set at least one cap"),
    ("frequency_cap", {"maxContacts": 3}, "config.windowDays", "required with maxContacts"),
    ("frequency_cap", {"maxPerDay": 0}, "config.maxPerDay", "greater than or equal to 1"),
    ("frequency_cap", {"maxPerDay": "3"}, "config.maxPerDay", "valid integer"),
    ("cooldown", {}, "config.cooldownHours", "cooldownHours is required"),
    ("cooldown", {"cooldownHours": 0}, "config.cooldownHours", "greater than 0"),
    ("cooldown", {"cooldownHours": -4}, "config.cooldownHours", "greater than 0"),
    ("outcome_based", {"lookbackDays": 90}, "config.outcomeType", "outcomeType is required"),
    ("segment_exclusion", {"excludeSegments": []}, "config.excludeSegments", "at least 1"),
    ("time_window", {"timezone": "Europe/Paris"}, "config.allowedDays", "set allowedDays"),
    ("time_window", {"allowedDays": [8]}, "config.allowedDays.0", "less than or equal to 7"),
    (
        "time_window",
        {"allowedDays": [1], "timezone": "Mars/Olympus"},
        "config.timezone",
        "unknown time zone",
    ),
    ("time_window", {"allowedHours": {"start": 9}}, "config.allowedHours.end", "field required"),
    ("mutual_exclusion", {"offerIds": ["off_bogo_5_5d"]}, "config.offerIds", "at least 2"),
    (
        "mutual_exclusion",
        {"offerIds": ["off_bogo_5_5d", "off_gone"]},
        "config.offerIds.1",
        "offer 'off_gone' does not exist",
    ),
    ("customer_total_cap", {}, "config.maxTotal", "set at least one cap"),
    (
        "category_suppression",
        {"categoryIds": ["cat_gone"]},
        "config.categoryIds.0",
        "category 'cat_gone' does not exist",
    ),
    ("allow_override", {"offerIds": "off_bogo_5_5d"}, "config.offerIds", "valid list"),
]


@pytest.mark.parametrize(("rule_type", "config", "field", "message"), BAD_POLICIES)
def test_policy_configs_are_validated_per_rule_type(
    rule_type: str, config: dict[str, Any], field: str, message: str, server: Server
) -> None:
    error = error_of(
        server.client().post(POLICIES, json=_policy(rule_type, config)), 400, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == field, error
    assert message in error["details"][0]["message"], error
    assert field in error["message"]


GOOD_POLICIES = [
    ("frequency_cap", {"maxPerDay": 3, "maxPerWeek": 10, "lookbackHours": 12}),
    ("frequency_cap", {"maxContacts": 3, "windowDays": 7}),
    ("cooldown", {"cooldownHours": 48, "perOffer": True, "bypassable": False}),
    ("budget_exhausted", {"checkImpressions": True, "checkDailyBudget": True}),
    ("outcome_based", {"outcomeType": "complaint", "lookbackDays": 90, "action": "suppress"}),
    ("segment_exclusion", {"excludeSegments": ["do_not_contact", "legal_hold"]}),
    (
        "time_window",
        {
            "allowedDays": [1, 2, 3, 4, 5],
            "allowedHours": {"start": 9, "end": 18},
            "timezone": "Europe/Paris",
        },
    ),
    ("mutual_exclusion", {"offerIds": ["off_bogo_5_5d", "off_bogo_5_7d"]}),
    ("cross_channel_cap", {"maxPerWeek": 4}),
    ("customer_total_cap", {"maxTotal": 20}),
    ("allow_override", {"offerIds": ["off_info_3d"]}),
    ("category_suppression", {"lookbackHours": 6, "categoryIds": ["cat_engagement"]}),
    ("metric_condition", {"metric": "dismiss_rate", "operator": "gt", "value": 0.5}),
]


@pytest.mark.parametrize(("rule_type", "config"), GOOD_POLICIES)
def test_valid_policy_configs_are_stored_as_sent(
    rule_type: str, config: dict[str, Any], server: Server
) -> None:
    created = server.client().post(POLICIES, json=_policy(rule_type, config))
    assert created.status_code == 201, created.text
    assert created.json()["config"] == config


def test_policy_priority_range_and_defaults(server: Server) -> None:
    demo = server.client()
    error = error_of(
        demo.post(POLICIES, json=_policy("cooldown", {"cooldownHours": 1}, priority=101)),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "priority"
    body = _policy("cooldown", {"cooldownHours": 2}, scopeId="off_info_3d")
    del body["scope"]
    created = demo.post(POLICIES, json=body).json()
    assert (created["priority"], created["scope"], created["status"]) == (50, "offer", "paused")
    error = error_of(
        demo.post(POLICIES, json={**body, "name": "no scope id", "scopeId": None}),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "scopeId"
    error = error_of(
        demo.post(RULES, json=_rule("segment_required", {"requiredSegments": []}, priority=-1)),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "priority"


def test_scope_ids_must_name_entities_of_the_tenant(server: Server) -> None:
    demo = server.client()
    for scope, scope_id in (
        ("offer", "off_gone"),
        ("creative", "cr_gone"),
        ("channel", "ch_gone"),
        ("category", "cat_gone"),
        ("placement", "pl_gone"),
    ):
        body = _rule(
            "segment_required",
            {"requiredSegments": []},
            scope=scope,
            scopeId=scope_id,
            name=f"scoped {scope}",
        )
        error = error_of(demo.post(RULES, json=body), 400, "VALIDATION_ERROR")
        assert error["details"][0]["field"] == "scopeId" and scope_id in error["message"]
    body = _policy(
        "cooldown",
        {"cooldownHours": 1},
        name="multi",
        scopes=[
            {"scope": "offer", "scopeId": "off_info_3d"},
            {"scope": "channel", "scopeId": "ch_gone"},
        ],
    )
    error = error_of(demo.post(POLICIES, json=body), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "scopes.1.scopeId"
    segment = _rule(
        "segment_required",
        {"requiredSegments": []},
        scope="segment",
        scopeId="any-segment-name",
        name="segment scoped",
    )
    assert demo.post(RULES, json=segment).status_code == 201


def test_updates_are_validated_like_creates(server: Server) -> None:
    demo = server.client()
    error = error_of(
        demo.patch(
            f"{RULES}/qr_min_age", json={"config": {"attribute": "customer.age", "operator": "gte"}}
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "config.value"
    error = error_of(
        demo.patch(f"{RULES}/qr_min_age", json={"ruleType": "segment_required"}),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"][0]["field"] == "config.requiredSegments"
    error = error_of(
        demo.patch(f"{POLICIES}/cp_daily_cap", json={"config": {}}), 400, "VALIDATION_ERROR"
    )
    assert error["details"][0]["field"] == "config.maxPerDay"
    assert demo.get(f"{RULES}/qr_min_age").json()["version"] == 1
    ok = demo.patch(f"{POLICIES}/cp_daily_cap", json={"config": {"maxPerDay": 4}})
    assert ok.status_code == 200 and ok.json()["version"] == 2


def test_stage_filter_and_decisioning_stage(server: Server) -> None:
    demo = server.client()
    error = error_of(demo.get(RULES, params={"stage": "bogus"}), 400, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "stage"
    match = demo.post(
        RULES, json=_rule("propensity_threshold", {"minPropensity": 0.1}, name="soft propensity")
    ).json()
    assert "stage" not in match
    assert match["decisioningStage"] == "match"  # the default stage of the rule type
    eligibility = demo.get(RULES, params={"stage": "eligibility", "limit": 100}).json()
    assert {"qr_min_age", "qr_min_income", "qr_hard_bogo_income"} <= {
        r["id"] for r in eligibility["data"]
    }
    assert all(r["decisioningStage"] == "eligibility" for r in eligibility["data"])
    assert eligibility["pagination"]["total"] == len(eligibility["data"])
    matches = demo.get(RULES, params={"stage": "match", "limit": 1}).json()
    assert matches["data"][0]["decisioningStage"] == "match"
    assert matches["pagination"]["hasMore"] == (matches["pagination"]["total"] > 1)
    if matches["pagination"]["hasMore"]:
        rest = demo.get(
            RULES,
            params={"stage": "match", "limit": 100, "cursor": matches["pagination"]["nextCursor"]},
        ).json()
        assert len(rest["data"]) == matches["pagination"]["total"] - 1
