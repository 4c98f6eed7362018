from __future__ import annotations

import pytest

from engine.scoring import compute_evidence
from tests.factories import (
    creative,
    decide_one,
    flow_config,
    history,
    interaction,
    make_catalog,
    node,
    offer,
    rule,
)


def _catalog(rules=()):
    offers = [
        offer("o1", priority=80, businessValue=50),
        offer("o2", priority=50),
        offer("o3", priority=0),
    ]
    creatives = [creative("c1", "o1"), creative("c2", "o2", weight=50), creative("c3", "o3")]
    return make_catalog(offers=offers, creatives=creatives, rules=rules)


def _scores(result) -> dict[str, float]:
    return dict(zip(result.decisions["offer_id"], result.decisions["score"], strict=True))


def test_priority_weighted():
    result = decide_one(_catalog(), flow_config(node("score"), node("rank")))
    assert _scores(result) == {"o1": 0.8, "o2": 0.25, "o3": 0.0}


def test_priority_weighted_with_failed_soft_rule():
    rules = [
        rule(
            "r",
            "attribute_condition",
            {"attribute": "age", "operator": "gte", "value": 18},
            stage="match",
        )
    ]
    flow = flow_config(node("enrich"), node("qualify"), node("score"), node("rank"))
    result = decide_one(_catalog(rules), flow, customer={"age": 10})
    assert _scores(result)["o1"] == pytest.approx(0.4)


def test_propensity_method():
    events = [
        interaction("x", "o1", "click" if i < 45 else "dismiss", hours_ago=2) for i in range(60)
    ]
    flow = flow_config(node("score", method="propensity"), node("rank"))
    result = decide_one(_catalog(), flow, events=events)
    scores = _scores(result)
    assert scores["o1"] == pytest.approx(0.75)
    assert scores["o2"] == pytest.approx(0.75)  # category/global prior


def test_precomputed_evidence_is_used():
    from engine.decide import DecisionRequest, decide

    catalog = _catalog()
    population = history(
        *[interaction("x", "o1", "click" if i < 6 else "dismiss", hours_ago=2) for i in range(60)]
    )
    evidence = compute_evidence(catalog, population)
    flow = flow_config(node("score", method="propensity"), node("rank"))
    result = decide(
        catalog,
        None,
        history(),
        DecisionRequest(customer_id="u1"),
        as_of=population["ts"].max(),
        flow=flow,
        evidence=evidence,
    )
    assert _scores(result)["o1"] == pytest.approx(0.1)


def test_formula_method_and_elimination():
    flow = flow_config(node("score", method="formula"), node("rank"))
    result = decide_one(_catalog(), flow, trace=True)
    scores = _scores(result)
    # o1: P 0.5, R 1, I 0.5, E 0.8; o2: I neutral 0.5, E 0.5; o3: E 0 -> eliminated
    assert scores["o1"] == pytest.approx(0.5**0.4 * 0.5**0.3 * 0.8**0.1)
    assert scores["o2"] == pytest.approx(0.5**0.4 * 0.5**0.3 * 0.5**0.1)
    assert "o3" not in scores
    trace = result.trace_records()[0]
    eliminated = {s["offerId"]: s["eliminated"] for s in trace["scoringResults"]}
    assert eliminated == {"o1": False, "o2": False, "o3": True}
    assert trace["finalCount"] == 2
    factors = next(s["factors"] for s in trace["scoringResults"] if s["offerId"] == "o1")
    assert factors == pytest.approx(
        {"propensity": 0.5, "relevance": 1.0, "impact": 0.5, "emphasis": 0.8}
    )


def test_formula_weights_all_on_propensity():
    flow = flow_config(
        node(
            "score",
            method="formula",
            formula={
                "propensityWeight": 1,
                "relevanceWeight": 0,
                "impactWeight": 0,
                "emphasisWeight": 0,
            },
        ),
        node("rank"),
    )
    result = decide_one(_catalog(), flow)
    assert set(_scores(result).values()) == {0.5}
