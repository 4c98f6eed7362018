from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from engine.metrics import compute_metrics, metrics_for_candidates, metrics_wide
from tests.engine.metrics.conftest import AS_OF

METRICS = [
    {"name": "clicks_7d", "aggregateFunction": "count", "sourceField": "click", "windowDays": 7},
    {"name": "avg_order", "aggregateFunction": "avg", "sourceField": "conversion"},
    {"name": "ctr_7d", "aggregateFunction": "ratio", "sourceField": "click",
     "denominatorField": "impression", "windowDays": 7},
    {"name": "offer_clicks", "aggregateFunction": "count", "sourceField": "click",
     "windowDays": 30, "groupByDimensions": ["offerId"]},
    {"name": "offer_channel_revenue", "aggregateFunction": "sum", "sourceField": "converts",
     "groupByDimensions": ["offerId", "channelId"]},
    {"name": "by_outcome", "aggregateFunction": "count", "sourceField": "positive",
     "groupByDimensions": ["outcomeType"]},
]


def test_metrics_wide_with_definitions_fills_count_and_sum(golden: pl.DataFrame) -> None:
    long = compute_metrics(golden, METRICS, as_of=AS_OF)
    wide = metrics_wide(long, ["c3", "c1", "c2", "nobody"], METRICS)
    want = pl.DataFrame({
        "customer_id": ["c3", "c1", "c2", "nobody"],
        "metrics.clicks_7d": [1.0, 2.0, 0.0, 0.0],  # no click: 0
        "metrics.avg_order": [None, 15.0, None, None],  # no value: null
        "metrics.ctr_7d": [None, 1.0, 0.0, None],
    })
    assert_frame_equal(wide, want)


def test_metrics_wide_without_definitions_leaves_gaps_null(golden: pl.DataFrame) -> None:
    long = compute_metrics(golden, METRICS, as_of=AS_OF)
    wide = metrics_wide(long, pl.Series(["c2"]))
    assert wide.columns == ["customer_id", "metrics.avg_order", "metrics.clicks_7d",
                            "metrics.ctr_7d"]
    assert wide.row(0) == ("c2", None, None, 0.0)


def test_metrics_wide_of_nothing(golden: pl.DataFrame) -> None:
    long = compute_metrics(golden.head(0), METRICS, as_of=AS_OF)
    wide = metrics_wide(long, pl.DataFrame({"customer_id": ["c1"], "x": [1]}), METRICS[:1])
    assert wide.to_dicts() == [{"customer_id": "c1", "metrics.clicks_7d": 0.0}]


def candidates() -> pl.DataFrame:
    return pl.DataFrame({
        "customer_id": ["c1", "c1", "c1", "c2", "c3"],
        "offer.id": ["off_a", "off_b", "off_c", "off_a", "off_a"],
        "creative.id": ["cr1", "cr2", "cr3", "cr4", "cr5"],
        "channel.id": ["ch_web", "ch_email", "ch_web", "ch_web", "ch_web"],
    })


def test_metrics_for_candidates_joins_grouped_metrics_on_the_candidate_ids(
    golden: pl.DataFrame,
) -> None:
    long = compute_metrics(golden, METRICS, as_of=AS_OF)
    out = metrics_for_candidates(long, candidates(), METRICS)
    assert out.columns == [*candidates().columns, "metrics.clicks_7d", "metrics.avg_order",
                           "metrics.ctr_7d", "metrics.offer_clicks",
                           "metrics.offer_channel_revenue"]  # outcomeType grouping: not joined
    assert out["creative.id"].to_list() == ["cr1", "cr2", "cr3", "cr4", "cr5"]  # order kept
    assert out["metrics.offer_clicks"].to_list() == [1.0, 1.0, 0.0, 0.0, 1.0]
    # c1 converted for 20 on off_a/ch_web and 10 on off_b/ch_email
    assert out["metrics.offer_channel_revenue"].to_list() == [20.0, 10.0, 0.0, 0.0, 0.0]
    assert out["metrics.clicks_7d"].to_list() == [2.0, 2.0, 2.0, 0.0, 1.0]


def test_metrics_for_candidates_lazy_without_definitions_and_existing_columns(
    golden: pl.DataFrame,
) -> None:
    long = compute_metrics(golden, METRICS, as_of=AS_OF)
    lazy = candidates().lazy().with_columns(pl.lit(9.0).alias("metrics.clicks_7d"))
    out = metrics_for_candidates(long, lazy)
    assert isinstance(out, pl.LazyFrame)
    frame = out.collect()
    assert frame["metrics.clicks_7d"].to_list() == [9.0] * 5  # already there: untouched
    assert frame["metrics.offer_clicks"].to_list() == [1.0, 1.0, None, None, 1.0]
    assert "metrics.by_outcome" not in frame.columns
