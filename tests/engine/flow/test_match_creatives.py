from __future__ import annotations

import pytest

from tests.factories import (
    channel,
    creative,
    decide_one,
    flow_config,
    make_catalog,
    node,
    offer,
    placement,
)


def _catalog(hero_weight: int = 100):
    return make_catalog(
        offers=[offer("o1", priority=90), offer("o2", priority=80), offer("o3", priority=70)],
        channels=[
            channel("ch_email", "email"),
            channel("ch_web", "web"),
            channel("ch_push", "push", status="paused"),
        ],
        placements=[
            placement("pl_hero", "ch_web", slot_type="hero_banner"),
            placement("pl_side", "ch_web", slot_type="sidebar"),
        ],
        creatives=[
            creative("c1e", "o1", "ch_email"),
            creative("c1h", "o1", "ch_web", placement_id="pl_hero", weight=hero_weight),
            creative("c1s", "o1", "ch_web", placement_id="pl_side"),
            creative("c2w", "o2", "ch_web"),
            creative("c2p", "o2", "ch_push"),
            creative("c3x", "o3", "ch_email", status="draft"),
        ],
    )


def _flow(mode: str = "any", require: bool = True):
    return flow_config(
        node("match_creatives", placementMatchMode=mode, requireCreative=require),
        node("rank", maxCandidates=50),
    )


def _pairs(result) -> list[tuple[str, str | None]]:
    return list(zip(result.decisions["offer_id"], result.decisions["creative_id"], strict=True))


def test_channel_type_filters_creatives():
    result = decide_one(_catalog(), _flow(), channel="web")
    assert _pairs(result) == [("o1", "c1h"), ("o2", "c2w")]


def test_channel_id_filters_creatives():
    assert _pairs(decide_one(_catalog(), _flow(), channel_id="ch_email")) == [("o1", "c1e")]


def test_inactive_channels_and_creatives_never_match():
    assert _pairs(decide_one(_catalog(), _flow(), channel="push")) == []
    assert "o3" not in decide_one(_catalog(), _flow()).decisions["offer_id"].to_list()


@pytest.mark.parametrize("requested", ["pl_side", "sidebar"])
def test_exact_placement_by_id_or_slot_type(requested):
    result = decide_one(_catalog(), _flow("exact"), channel="web", placement=requested)
    assert _pairs(result) == [("o1", "c1s")]


def test_exact_without_request_placement_is_a_no_op():
    result = decide_one(_catalog(), _flow("exact"), channel="web")
    assert _pairs(result) == [("o1", "c1h"), ("o2", "c2w")]


def test_any_mode_also_takes_creatives_without_placement():
    result = decide_one(_catalog(), _flow("any"), channel="web", placement="pl_side")
    assert _pairs(result) == [("o1", "c1s"), ("o2", "c2w")]


def test_none_mode_ignores_placement():
    result = decide_one(_catalog(), _flow("none"), channel="web", placement="pl_nowhere")
    assert _pairs(result) == [("o1", "c1h"), ("o2", "c2w")]


def test_require_creative_false_keeps_offers_without_a_matching_creative():
    result = decide_one(
        _catalog(), _flow("exact", require=False), channel="web", placement="pl_side"
    )
    assert _pairs(result) == [("o1", "c1s"), ("o2", None), ("o3", None)]
    assert result.decisions["channel_id"].to_list() == ["ch_web", None, None]
    assert result.funnel["candidateCount"].to_list() == [3]


def test_require_creative_true_drops_them():
    result = decide_one(
        _catalog(), _flow("exact", require=True), channel="web", placement="pl_side"
    )
    assert _pairs(result) == [("o1", "c1s")]


def test_exclude_creatives():
    result = decide_one(_catalog(), _flow(), channel="web", exclude_creatives=["c1h"])
    assert _pairs(result) == [("o1", "c1s"), ("o2", "c2w")]


def test_best_creative_is_highest_weight_then_id():
    result = decide_one(_catalog(hero_weight=40), _flow(), channel="web")
    assert _pairs(result) == [("o1", "c1s"), ("o2", "c2w")]
    # equal weights: lowest id
    result = decide_one(_catalog(), _flow())
    assert _pairs(result) == [("o1", "c1e"), ("o2", "c2w")]
