from __future__ import annotations

import json

import pytest

from tests.factories import (
    category,
    creative,
    decide_one,
    flow_config,
    make_catalog,
    node,
    offer,
)

pytest.importorskip("engine.formula")


def _catalog():
    cats = [
        category(
            "cat_a",
            "Loans",
            fields=[
                {"name": "base_rate", "type": "number"},
                {
                    "name": "personalized_rate",
                    "type": "computed",
                    "outputType": "number",
                    "formula": "base_rate * (1 - customer.loyalty_score * 0.01)",
                },
                {"name": "broken", "type": "computed", "formula": "1 +"},
                {"name": "ratio", "type": "computed", "formula": "10 / customer.loyalty_score"},
            ],
        ),
        category(
            "cat_b",
            "Cards",
            fields=[
                {
                    "name": "greeting",
                    "type": "computed",
                    "formula": 'concat("Hi ", attributes.name)',
                },
            ],
        ),
    ]
    offers = [
        offer("o1", priority=90, category="cat_a", customFields={"base_rate": 20}),
        offer("o2", priority=80, category="cat_b"),
        offer("o3", priority=70, category=None),
    ]
    content = {
        "subject": "Hi {{first_name}}, your rate is {{personalization.personalized_rate}}",
        "body": "{tier} / {{ base_rate }} / {{unknown}}",
    }
    creatives = [
        creative(
            "c1",
            "o1",
            content=content,
            personalization=[
                {"variable": "first_name", "source": "customer.first_name", "fallback": "friend"}
            ],
        ),
        creative("c2", "o2", content={"headline": "{{greeting}} {{attributes.name}}"}),
        creative("c3", "o3", content={"headline": "static"}),
    ]
    return make_catalog(offers=offers, categories=cats, creatives=creatives)


FLOW = flow_config(node("enrich"), node("rank"), node("compute"), node("response"))


def _rows(result) -> dict[str, dict]:
    return {r["offer_id"]: r for r in result.decisions.iter_rows(named=True)}


def test_computed_fields_land_in_personalization():
    result = decide_one(
        _catalog(),
        FLOW,
        customer={"loyalty_score": 10, "first_name": "Ann"},
        attributes={"name": 'Bo "B"'},
    )
    rows = _rows(result)
    p1 = json.loads(rows["o1"]["personalization"])
    assert p1["personalized_rate"] == pytest.approx(18.0)
    assert p1["broken"] is None  # a formula that does not compile is null
    assert p1["ratio"] == pytest.approx(1.0)
    assert json.loads(rows["o2"]["personalization"]) == {"greeting": 'Hi Bo "B"'}
    assert json.loads(rows["o3"]["personalization"]) == {}


def test_runtime_failure_is_null_for_that_row():
    result = decide_one(_catalog(), FLOW, customer={"loyalty_score": 0})
    assert json.loads(_rows(result)["o1"]["personalization"])["ratio"] is None


def test_content_placeholders_are_rendered():
    result = decide_one(
        _catalog(),
        FLOW,
        customer={"loyalty_score": 10, "first_name": "Ann", "tier": "gold"},
        attributes={"name": 'Bo "B"'},
    )
    rows = _rows(result)
    c1 = json.loads(rows["o1"]["content"])
    assert c1 == {"subject": "Hi Ann, your rate is 18", "body": "gold / 20 / "}
    assert json.loads(rows["o2"]["content"]) == {"headline": 'Hi Bo "B" Bo "B"'}
    assert json.loads(rows["o3"]["content"]) == {"headline": "static"}


def test_values_are_json_escaped_and_numbers_keep_their_fraction():
    result = decide_one(
        _catalog(),
        FLOW,
        customer={"loyalty_score": 12.5, "tier": 'a\\b\n"c"'},
        attributes={"name": "x"},
    )
    c1 = json.loads(_rows(result)["o1"]["content"])
    assert c1["subject"] == "Hi friend, your rate is 17.5"
    assert c1["body"] == 'a\\b\n"c" / 20 / '


def test_mapping_fallback_for_unknown_customer():
    result = decide_one(_catalog(), FLOW, customer=None)
    c1 = json.loads(_rows(result)["o1"]["content"])
    assert c1["subject"] == "Hi friend, your rate is "


def test_without_compute_and_response_nodes():
    result = decide_one(_catalog(), flow_config(node("rank")), customer={"loyalty_score": 1})
    row = _rows(result)["o1"]
    assert row["personalization"] == "{}"
    assert "{{first_name}}" in json.loads(row["content"])["subject"]
