from __future__ import annotations

import pytest

from tests.factories import (
    category,
    creative,
    decide_one,
    flow_config,
    make_catalog,
    node,
    offer,
    offer_ids,
)


def _catalog():
    offers = [
        offer(
            "o1",
            name="Gold Card",
            priority=90,
            tags=["card", "premium"],
            customFields={"rate": 0.1},
        ),
        offer("o2", name="Silver Card", priority=60, tags=["card"], customFields={"rate": 0.3}),
        offer("o3", name="Loan", priority=30, category="cat_b", businessValue=50),
    ]
    cats = [category("cat_a", fields=[{"name": "rate", "type": "number"}]), category("cat_b")]
    return make_catalog(
        offers=offers, categories=cats, creatives=[creative(f"c{i}", f"o{i}") for i in (1, 2, 3)]
    )


def _run(conditions, combinator="AND", customer=None, **request):
    flow = flow_config(
        node("enrich"),
        node("f", "filter", conditions=conditions, combinator=combinator),
        node("rank", maxCandidates=50),
    )
    return offer_ids(decide_one(_catalog(), flow, customer=customer, limit=50, **request))


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("offer.priority", "eq", 60, ["o2"]),
        ("offer.priority", "neq", 60, ["o1", "o3"]),
        ("offer.priority", "gt", 60, ["o1"]),
        ("offer.priority", "gte", 60, ["o1", "o2"]),
        ("offer.priority", "lt", 60, ["o3"]),
        ("offer.priority", "lte", 60, ["o2", "o3"]),
        ("offer.id", "in", ["o1", "o3"], ["o1", "o3"]),
        ("offer.id", "not_in", ["o1", "o3"], ["o2"]),
        ("offer.name", "contains", "Card", ["o1", "o2"]),
        ("offer.tags", "contains", "premium", ["o1"]),
        ("offer.name", "starts_with", "Sil", ["o2"]),
        ("offer.name", "regex", "^(Gold|Loan)", ["o1", "o3"]),
        ("offer.businessValue", "is_null", None, ["o1", "o2"]),
        ("offer.businessValue", "is_not_null", None, ["o3"]),
        ("offer.rate", "lt", 0.2, ["o1"]),
        ("channel.type", "eq", "email", ["o1", "o2", "o3"]),
    ],
)
def test_operators(field, op, value, expected):
    assert _run([{"field": field, "operator": op, "value": value}]) == expected


def test_and_or_combinators():
    conds = [
        {"field": "offer.priority", "operator": "gt", "value": 50},
        {"field": "offer.name", "operator": "contains", "value": "Silver"},
    ]
    assert _run(conds, "AND") == ["o2"]
    assert _run(conds, "OR") == ["o1", "o2"]
    assert _run(conds, "or") == ["o1", "o2"]


def test_customer_and_request_fields():
    cond = [{"field": "customer.tier", "operator": "eq", "value": "gold"}]
    assert _run(cond, customer={"tier": "gold"}) == ["o1", "o2", "o3"]
    assert _run(cond, customer={"tier": "silver"}) == []
    # unknown attribute: the condition fails, is_null passes
    assert _run(cond, customer=None) == []
    assert _run([{"field": "customer.tier", "operator": "is_null"}], customer=None) == [
        "o1",
        "o2",
        "o3",
    ]
    cond = [{"field": "request.channel", "operator": "eq", "value": "email"}]
    assert _run(cond, channel="email") == ["o1", "o2", "o3"]
    assert _run(cond) == []
    cond = [{"field": "attributes.device", "operator": "eq", "value": "mobile"}]
    assert _run(cond, attributes={"device": "mobile"}) == ["o1", "o2", "o3"]
