"""Golden values: every aggregate on the hand-written log of ``conftest.py``, worked out by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.metrics import LONG_SCHEMA, compute_metrics, realtime_values
from tests.engine.metrics.conftest import AS_OF, DAY, event, history


def metric(name: str, function: str, source: str, window: int | None = None, **extra: Any):
    return {"name": name, "aggregateFunction": function, "sourceField": source,
            "windowDays": window, **extra}


def expected(rows: list[tuple[str, str, str | None, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=LONG_SCHEMA, orient="row")


def check(history_frame: pl.DataFrame, metrics: list[dict], rows: list[tuple]) -> None:
    out = compute_metrics(history_frame, metrics, as_of=AS_OF)
    assert out.schema == pl.Schema(LONG_SCHEMA)
    assert_frame_equal(
        out.sort("metric", "customer_id", "group_key"),
        expected(rows).sort("metric", "customer_id", "group_key"),
    )


def test_count_window_edges(golden: pl.DataFrame) -> None:
    # c1: the impression exactly 7 days old is out, the one at as_of is in, the one an hour
    # after as_of never counts; the click 7 days minus 1 µs old is in.
    check(golden, [metric("clicks_7d", "count", "click", 7),
                   metric("impressions_7d", "count", "impressions", 7)], [
        ("clicks_7d", "c1", None, 2.0),
        ("clicks_7d", "c3", None, 1.0),
        ("impressions_7d", "c1", None, 2.0),
        ("impressions_7d", "c2", None, 2.0),
    ])


def test_all_time_window_still_stops_at_as_of(golden: pl.DataFrame) -> None:
    check(golden, [metric("impressions_all", "count", "impressions")], [
        ("impressions_all", "c1", None, 3.0),
        ("impressions_all", "c2", None, 2.0),
    ])


def test_sum_skips_null_values_and_is_zero_without_any(golden: pl.DataFrame) -> None:
    check(golden, [
        metric("revenue_30d", "sum", "converts", 30),  # 20 + 10; the 40-day-old one is out
        metric("revenue_all", "sum", "conversion"),  # 20 + 10 + null
        metric("click_value", "sum", "click"),  # clicks carry no value: 0, not null
    ], [
        ("click_value", "c1", None, 0.0),
        ("click_value", "c3", None, 0.0),
        ("revenue_30d", "c1", None, 30.0),
        ("revenue_30d", "c4", None, 0.0),
        ("revenue_all", "c1", None, 30.0),
        ("revenue_all", "c4", None, 0.0),
    ])


def test_avg_min_max_skip_nulls_and_are_null_without_values(golden: pl.DataFrame) -> None:
    check(golden, [
        metric("avg_order", "avg", "conversion"),
        metric("min_value_30d", "min", "totalValue", 30),
        metric("max_value_30d", "max", "totalValue", 30),
    ], [
        ("avg_order", "c1", None, 15.0),
        ("avg_order", "c4", None, None),  # one conversion, no value
        ("max_value_30d", "c1", None, 20.0),
        ("min_value_30d", "c1", None, 10.0),
    ])


def test_ratio_zero_denominator_is_null(golden: pl.DataFrame) -> None:
    check(golden, [
        metric("ctr_7d", "ratio", "click", 7, denominatorField="impression"),
    ], [
        ("ctr_7d", "c1", None, 1.0),  # 2 clicks / 2 impressions
        ("ctr_7d", "c2", None, 0.0),  # 0 / 2
        ("ctr_7d", "c3", None, None),  # 1 / 0
    ])


def test_ratio_of_value_per_impression(golden: pl.DataFrame) -> None:
    check(golden, [
        metric("value_per_impression", "ratio", "totalValue", 30, denominatorField="impressions"),
    ], [
        ("value_per_impression", "c1", None, 10.0),  # (20 + 10) / 3 impressions
        ("value_per_impression", "c2", None, 0.0),  # no value / 2 impressions
    ])


def test_group_by_dimensions(golden: pl.DataFrame) -> None:
    check(golden, [
        metric("ctr_7d_by_offer", "ratio", "click", 7, denominatorField="impression",
               groupByDimensions=["offerId"]),
        metric("clicks_by_offer_channel", "count", "click", 30,
               groupByDimensions=["offerId", "channelId"]),
        metric("positive_by_outcome", "count", "positive", groupByDimensions=["outcomeType"]),
    ], [
        ("clicks_by_offer_channel", "c1", "offerId=off_a|channelId=ch_web", 1.0),
        ("clicks_by_offer_channel", "c1", "offerId=off_b|channelId=ch_email", 1.0),
        ("clicks_by_offer_channel", "c3", "offerId=off_a|channelId=ch_web", 1.0),
        ("ctr_7d_by_offer", "c1", "offerId=off_a", 0.5),
        ("ctr_7d_by_offer", "c1", "offerId=off_b", None),  # its impression is 7 days old
        ("ctr_7d_by_offer", "c2", "offerId=off_a", 0.0),
        ("ctr_7d_by_offer", "c3", "offerId=off_a", None),
        ("positive_by_outcome", "c1", "outcomeType=click", 2.0),
        ("positive_by_outcome", "c1", "outcomeType=conversion", 3.0),
        ("positive_by_outcome", "c3", "outcomeType=click", 1.0),
        ("positive_by_outcome", "c4", "outcomeType=conversion", 1.0),
    ])


def test_dimension_order_is_the_definition_order(golden: pl.DataFrame) -> None:
    out = compute_metrics(golden, [metric("m", "count", "click", 30,
                                          groupByDimensions=["channelId", "offerId"])],
                          as_of=AS_OF)
    assert sorted(out["group_key"]) == [
        "channelId=ch_email|offerId=off_b", "channelId=ch_web|offerId=off_a",
        "channelId=ch_web|offerId=off_a"]


def test_rows_with_a_null_grouping_column_are_left_out(golden: pl.DataFrame) -> None:
    check(golden.filter(pl.col("customer_id") == "c2"),
          [metric("imps_by_channel", "count", "impressions", groupByDimensions=["channelId"])],
          [("imps_by_channel", "c2", "channelId=ch_web", 1.0)])


def test_filter_conditions_and_or(golden: pl.DataFrame) -> None:
    email_engagement = {"and": [
        {"field": "channelId", "operator": "eq", "value": "ch_email"},
        {"or": [{"field": "outcomeType", "operator": "eq", "value": "click"},
                {"field": "value", "operator": "gte", "value": 15}]},
    ]}
    check(golden, [
        metric("email_engagement", "count", "positive", filterConditions=email_engagement),
        metric("web_or_big", "count", "positive", filterConditions={"or": [
            {"field": "channelId", "operator": "eq", "value": "ch_web"},
            {"field": "value", "operator": "gt", "value": 5}]}),
    ], [
        ("email_engagement", "c1", None, 1.0),  # the email click; the 10.0 conversion is < 15
        ("web_or_big", "c1", None, 4.0),  # 3 web positives + the 10.0 email conversion
        ("web_or_big", "c3", None, 1.0),
        ("web_or_big", "c4", None, 1.0),
    ])


def test_filter_operators(golden: pl.DataFrame) -> None:
    def f(field: str, op: str, value: Any) -> dict:
        return {"field": field, "operator": op, "value": value}

    check(golden, [
        # a missing channel is "not equal" to ch_email
        metric("non_email_imps", "count", "impressions", filterConditions=f("channelId", "neq",
                                                                             "ch_email")),
        metric("off_b_imps", "count", "impressions", filterConditions=f("offerId", "in",
                                                                         ["off_b"])),
        metric("not_off_b_imps", "count", "impressions", filterConditions=f("offerId", "not_in",
                                                                             ["off_b"])),
        metric("b_conversions", "count", "conversion", filterConditions=f("offerId", "contains",
                                                                           "b")),
        metric("big_values", "count", "totalValue", filterConditions=f("value", "gt", 10)),
        metric("small_values", "count", "totalValue", filterConditions=f("value", "lte", 10)),
        metric("lt_values", "count", "totalValue", filterConditions=f("value", "lt", 20)),
        metric("no_channel_imps", "count", "impressions", filterConditions=f("channelId", "eq",
                                                                              None)),
        metric("inbound", "count", "positive", 1, filterConditions=f("direction", "eq",
                                                                      "inbound")),
    ], [
        ("b_conversions", "c1", None, 2.0),
        ("big_values", "c1", None, 1.0),
        ("inbound", "c1", None, 2.0),  # click + conversion; c3's, c4's are exactly 1 day old
        ("lt_values", "c1", None, 1.0),
        ("no_channel_imps", "c2", None, 1.0),
        ("non_email_imps", "c1", None, 2.0),
        ("non_email_imps", "c2", None, 2.0),
        ("not_off_b_imps", "c1", None, 2.0),
        ("not_off_b_imps", "c2", None, 2.0),
        ("off_b_imps", "c1", None, 1.0),
        ("small_values", "c1", None, 1.0),
    ])


def test_summary_counter_sources() -> None:
    frame = history([
        event("c", "impression", AS_OF - DAY),
        event("c", "click", AS_OF - DAY),
        event("c", "convert", AS_OF - DAY, value=4.0),  # the pack's alias of conversion
        event("c", "conversion", AS_OF - DAY, value=6.0),
        event("c", "dismiss", AS_OF - DAY),
        event("c", "defer", AS_OF - DAY),  # a neutral response
        event("c", "purchase", AS_OF - DAY, value=1.5),  # a custom outcome key
    ])
    names = ["impressions", "positive", "negative", "neutral", "converts", "totalValue",
             "purchase", "defer"]
    check(frame, [metric(n, "count", n, 7) for n in names], [
        ("converts", "c", None, 2.0),
        ("defer", "c", None, 1.0),
        ("impressions", "c", None, 1.0),
        ("negative", "c", None, 1.0),
        ("neutral", "c", None, 1.0),  # the impression is not a neutral *response*
        ("positive", "c", None, 4.0),
        ("purchase", "c", None, 1.0),
        ("totalValue", "c", None, 3.0),
    ])


def test_one_day_window_edge() -> None:
    frame = history([
        event("c", "click", AS_OF - DAY),  # exactly one day old: out
        event("c", "click", AS_OF - DAY + timedelta(microseconds=1)),  # in
    ])
    check(frame, [metric("clicks_1d", "count", "click", 1)], [("clicks_1d", "c", None, 1.0)])


def test_naive_and_aware_timestamps_and_lazy_input_agree(golden: pl.DataFrame) -> None:
    metrics = [metric("clicks_7d", "count", "click", 7),
               metric("avg_order", "avg", "conversion"),
               metric("by_offer", "sum", "totalValue", 30, groupByDimensions=["offerId"])]
    aware = compute_metrics(golden, metrics, as_of=AS_OF).sort("metric", "customer_id",
                                                               "group_key")
    naive = golden.with_columns(pl.col("ts").dt.replace_time_zone(None))
    for frame, as_of in ((naive, AS_OF), (naive, AS_OF.replace(tzinfo=None)),
                         (golden.lazy(), AS_OF), (golden.reverse(), AS_OF)):
        out = compute_metrics(frame, metrics, as_of=as_of)
        assert_frame_equal(out.sort("metric", "customer_id", "group_key"), aware)


def test_customers_with_only_future_rows_have_no_values() -> None:
    frame = history([event("c", "click", AS_OF + DAY)])
    check(frame, [metric("clicks", "count", "click")], [])


def test_empty_inputs() -> None:
    assert compute_metrics(history([]), [metric("m", "count", "click")], as_of=AS_OF).height == 0
    assert compute_metrics(history([]), [], as_of=AS_OF).schema == pl.Schema(LONG_SCHEMA)


def test_realtime_values_equal_batch_values(golden: pl.DataFrame) -> None:
    metrics = [metric("clicks_7d", "count", "click", 7, computeMode="realtime"),
               metric("revenue", "sum", "converts", 30, computeMode="realtime",
                      groupByDimensions=["offerId"])]
    batch = compute_metrics(golden, metrics, as_of=AS_OF)
    for customer in ("c1", "c2", "c3", "c4"):
        mine = golden.filter(pl.col("customer_id") == customer)
        assert_frame_equal(
            realtime_values(mine, metrics, AS_OF).sort("metric", "group_key"),
            batch.filter(pl.col("customer_id") == customer).sort("metric", "group_key"),
        )


def test_missing_history_columns_are_named() -> None:
    from engine.errors import ValidationError

    frame = history([]).drop("value")
    with pytest.raises(ValidationError, match="value"):
        compute_metrics(frame, [metric("m", "sum", "click")], as_of=AS_OF)
