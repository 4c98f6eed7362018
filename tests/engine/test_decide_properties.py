"""Invariants of ``decide`` over generated catalogs, customers, histories and requests."""

from __future__ import annotations

import dataclasses

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from engine.decide import DecisionRequest, decide
from engine.scoring import compute_evidence
from tests.factories import (
    AS_OF,
    creative,
    customers,
    flow_config,
    history,
    interaction,
    make_catalog,
    node,
    offer,
    policy,
    rule,
)

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CATEGORIES = ["cat_a", "cat_b", "cat_c"]
FLOWS = {
    "base": flow_config(
        node("match_creatives", placementMatchMode="exact", requireCreative=False),
        node("enrich"),
        node("qualify"),
        node("contact_policy"),
        node("score"),
        node("rank", method="diversity", maxCandidates=5),
        node("response"),
    ),
    "prie": flow_config(
        node("match_creatives", requireCreative=True),
        node("enrich"),
        node("qualify"),
        node("contact_policy"),
        node("score", method="formula"),
        node("rank"),
    ),
}


@st.composite
def scenarios(draw):
    n_offers = draw(st.integers(1, 7))
    offers, creatives = [], []
    for i in range(n_offers):
        offers.append(
            offer(
                f"o{i}",
                priority=draw(st.integers(0, 100)),
                category=draw(st.sampled_from(CATEGORIES)),
                mandatory=draw(st.booleans()) if i == 0 else False,
                businessValue=draw(st.none() | st.integers(0, 100)),
            )
        )
        for ch in draw(st.lists(st.sampled_from(["ch_email", "ch_web"]), max_size=2, unique=True)):
            for j in range(draw(st.integers(1, 2))):
                creatives.append(
                    creative(f"c{i}{ch[3]}{j}", f"o{i}", ch, weight=draw(st.integers(0, 100)))
                )
    rules = []
    if draw(st.booleans()):
        rules.append(
            rule(
                "age",
                "attribute_condition",
                {"attribute": "age", "operator": "gte", "value": draw(st.integers(15, 40))},
                stage=draw(st.sampled_from(["eligibility", "match"])),
            )
        )
    if draw(st.booleans()):
        rules.append(
            rule(
                "seg",
                "segment_required",
                {"requiredSegments": ["vip"]},
                scope="category",
                scope_id=draw(st.sampled_from(CATEGORIES)),
            )
        )
    policies = []
    if draw(st.booleans()):
        policies.append(policy("cap", "frequency_cap", {"maxPerDay": draw(st.integers(1, 3))}))
    if draw(st.booleans()):
        policies.append(
            policy(
                "cool",
                "cooldown",
                {"cooldownHours": 12},
                scope="offer",
                scope_id=f"o{draw(st.integers(0, n_offers - 1))}",
            )
        )
    catalog = make_catalog(offers=offers, creatives=creatives, rules=rules, policies=policies)

    k = draw(st.integers(1, 5))
    people = []
    for i in range(k):
        row = {"customer_id": f"u{i}", "age": draw(st.none() | st.integers(10, 60))}
        if draw(st.booleans()):
            row["segment"] = draw(st.sampled_from(["vip", "std"]))
        people.append(row)
    known = [p for p in people if draw(st.booleans()) or p["customer_id"] == "u0"]
    events = [
        interaction(
            f"u{draw(st.integers(0, k - 1))}",
            f"o{draw(st.integers(0, n_offers - 1))}",
            draw(st.sampled_from(["impression", "impression", "click", "dismiss"])),
            hours_ago=draw(st.floats(0.1, 100.0)),
        )
        for _ in range(draw(st.integers(0, 12)))
    ]
    requests = [
        DecisionRequest(
            customer_id=p["customer_id"],
            channel=draw(st.sampled_from([None, "email", "web"])),
            limit=draw(st.integers(1, 6)),
            segments=draw(st.lists(st.sampled_from(["vip", "new"]), max_size=2, unique=True)),
            exclude_offers=draw(
                st.lists(st.sampled_from([o["id"] for o in offers]), max_size=2, unique=True)
            ),
        )
        for p in people
    ]
    flow = FLOWS[draw(st.sampled_from(sorted(FLOWS)))]
    return catalog, customers(*known), history(*events), requests, flow


def _run(catalog, people, events, requests, flow, evidence):
    return decide(catalog, people, events, requests, as_of=AS_OF, flow=flow, evidence=evidence)


def _by_customer(frame: pl.DataFrame) -> pl.DataFrame:
    cols = [c for c in frame.columns if c != "request_index"]
    sort = [c for c in ("customer_id", "slot", "rank") if c in cols]
    return frame.select(cols).sort(sort)


@SETTINGS
@given(scenarios())
def test_deciding_together_equals_deciding_alone(scenario):
    catalog, people, events, requests, flow = scenario
    evidence = compute_evidence(catalog, events, as_of=AS_OF)
    together = _run(catalog, people, events, requests, flow, evidence)
    for i, req in enumerate(requests):
        alone = _run(catalog, people, events, req, flow, evidence)
        assert_frame_equal(
            together.for_request(i).drop("request_index"), alone.decisions.drop("request_index")
        )
        assert_frame_equal(
            together.funnel[i].drop("request_index"), alone.funnel.drop("request_index")
        )


@SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_row_order(scenario, rnd):
    catalog, people, events, requests, flow = scenario
    evidence = compute_evidence(catalog, events, as_of=AS_OF)
    seed = rnd.randint(0, 2**31)
    shuffled = dataclasses.replace(
        catalog,
        offers=catalog.offers.sample(fraction=1.0, shuffle=True, seed=seed),
        creatives=catalog.creatives.sample(fraction=1.0, shuffle=True, seed=seed + 1),
        channels=catalog.channels.sample(fraction=1.0, shuffle=True, seed=seed + 2),
    )
    order = list(range(len(requests)))
    rnd.shuffle(order)
    a = _run(catalog, people, events, requests, flow, evidence)
    b = _run(
        shuffled,
        people.sample(fraction=1.0, shuffle=True, seed=seed + 3),
        events.sample(fraction=1.0, shuffle=True, seed=seed + 4),
        [requests[i] for i in order],
        flow,
        evidence,
    )
    assert_frame_equal(_by_customer(a.decisions), _by_customer(b.decisions))
    assert_frame_equal(_by_customer(a.funnel), _by_customer(b.funnel))


@SETTINGS
@given(scenarios())
def test_funnel_counts_never_increase(scenario):
    catalog, people, events, requests, flow = scenario
    result = _run(catalog, people, events, requests, flow, None)
    for row in result.funnel.iter_rows(named=True):
        assert (
            row["candidateCount"]
            >= row["afterQualification"]
            >= row["afterContactPolicy"]
            >= row["finalCount"]
        )
        decided = result.for_request(row["request_index"])
        assert decided["offer_id"].n_unique() == row["finalCount"] == decided.height
        req = requests[row["request_index"]]
        assert decided.height <= req.limit
        assert decided["rank"].to_list() == list(range(1, decided.height + 1))
        scores = decided.filter(~pl.col("mandatory"))["score"].to_list()
        assert scores == sorted(scores, reverse=True)
        assert not set(decided["offer_id"]) & set(req.exclude_offers)


@SETTINGS
@given(scenarios())
def test_prie_with_all_weight_on_p_equals_propensity_scoring(scenario):
    catalog, people, events, requests, _ = scenario
    evidence = compute_evidence(catalog, events, as_of=AS_OF)
    prie = flow_config(
        node(
            "score",
            method="formula",
            formula={
                "propensityWeight": 1.0,
                "relevanceWeight": 0.0,
                "impactWeight": 0.0,
                "emphasisWeight": 0.0,
            },
        ),
        node("rank"),
    )
    plain = flow_config(node("score", method="propensity"), node("rank"))
    a = _run(catalog, people, events, requests, prie, evidence)
    b = _run(catalog, people, events, requests, plain, evidence)
    assert_frame_equal(a.decisions, b.decisions, check_exact=False, rel_tol=1e-12)


@SETTINGS
@given(scenarios())
def test_large_call_plan_shape_gives_the_same_result(scenario):
    """Batch-sized calls match creatives per request signature and join wide columns late;
    forcing that shape on a small call must not change anything."""
    import engine.flow.plan as plan

    catalog, people, events, requests, flow = scenario
    evidence = compute_evidence(catalog, events, as_of=AS_OF)
    small = _run(catalog, people, events, requests, flow, evidence)
    saved = plan.DIRECT_ROWS
    plan.DIRECT_ROWS = 0
    try:
        large = _run(catalog, people, events, requests, flow, evidence)
        template = _run(catalog, people, events, DecisionRequest(limit=3), flow, evidence)
    finally:
        plan.DIRECT_ROWS = saved
    assert_frame_equal(small.decisions, large.decisions)
    assert_frame_equal(small.funnel, large.funnel)
    assert_frame_equal(
        template.decisions,
        _run(catalog, people, events, DecisionRequest(limit=3), flow, evidence).decisions,
    )
