from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from engine.scoring import compute_evidence
from engine.scoring.evidence import propensity_expr
from tests.factories import AS_OF, creative, history, interaction, make_catalog, offer


def _catalog():
    offers = [
        offer("o1", category="cat_a"),
        offer("o2", category="cat_a"),
        offer("o3", category="cat_b"),
        offer("o4", category=None),
    ]
    return make_catalog(offers=offers, creatives=[creative(f"c{i}", f"o{i}") for i in range(1, 5)])


def _outcomes(offer_id, pos, neg, **kw):
    return [interaction("x", offer_id, "click", hours_ago=5, **kw) for _ in range(pos)] + [
        interaction("x", offer_id, "dismiss", hours_ago=5, **kw) for _ in range(neg)
    ]


def _p(evidence, offer_id, k=10.0):
    return evidence.for_offer(offer_id, k)


def test_offer_level_when_50_or_more():
    ev = compute_evidence(_catalog(), history(*_outcomes("o1", 15, 45)))
    assert _p(ev, "o1") == pytest.approx(0.25)


def test_category_prior_for_offer_without_evidence():
    ev = compute_evidence(_catalog(), history(*_outcomes("o1", 15, 45)))
    assert _p(ev, "o2") == pytest.approx(0.25)  # cat_a has 60 >= 20
    assert _p(ev, "o3") == pytest.approx(0.25)  # cat_b empty -> global (60 >= 10)


def test_nothing_at_all_is_half():
    ev = compute_evidence(_catalog(), history())
    assert [_p(ev, o) for o in ("o1", "o2", "o3", "o4")] == [0.5, 0.5, 0.5, 0.5]


def test_global_needs_ten_outcomes():
    ev = compute_evidence(_catalog(), history(*_outcomes("o3", 9, 0)))
    assert _p(ev, "o1") == 0.5
    ev = compute_evidence(_catalog(), history(*_outcomes("o3", 10, 0)))
    assert _p(ev, "o1") == pytest.approx(1.0)


def test_immature_offer_evidence_is_blended_with_the_prior():
    events = _outcomes("o1", 8, 2) + _outcomes("o2", 2, 18)  # cat_a: 10/30
    ev = compute_evidence(_catalog(), history(*events))
    prior = 10 / 30
    assert _p(ev, "o1") == pytest.approx((8 + 10 * prior) / (10 + 10))
    assert _p(ev, "o1", k=5) == pytest.approx((8 + 5 * prior) / (10 + 5))


def test_neutral_outcomes_and_later_events_do_not_count():
    events = _outcomes("o1", 30, 30)
    events += [interaction("x", "o1", "impression", hours_ago=1) for _ in range(100)]
    events += [interaction("x", "o1", "click", at=AS_OF + timedelta(days=1)) for _ in range(50)]
    ev = compute_evidence(_catalog(), history(*events), as_of=AS_OF)
    assert _p(ev, "o1") == pytest.approx(0.5)
    assert ev.frame.filter(pl.col("offer.id") == "o1")["_ev_n"].item() == 60


def test_classification_falls_back_to_outcome_type():
    events = [
        interaction("x", "o1", "conversion", hours_ago=1, classification=None)
        | {"classification": None}
        for _ in range(50)
    ]
    ev = compute_evidence(_catalog(), history(*events))
    assert _p(ev, "o1") == pytest.approx(1.0)


def test_propensity_expr_handles_missing_evidence():
    frame = pl.DataFrame(
        {"_ev_n": [None], "_ev_pos": [None], "_ev_prior": [None]},
        schema={"_ev_n": pl.Int64, "_ev_pos": pl.Int64, "_ev_prior": pl.Float64},
    )
    assert frame.select(propensity_expr()).item() == 0.5
