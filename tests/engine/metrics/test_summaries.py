from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.errors import ValidationError
from engine.metrics import (
    SUMMARY_COUNTERS,
    compute_metrics,
    daily_buckets,
    summaries,
    summaries_frame,
    window_totals,
)
from pipelines import starbucks
from tests.engine.metrics.conftest import AS_OF, event, history


def t(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


LOG = history([
    event("c", "impression", t(2026, 4, 30, 23, 59, 59, 999999)),  # Thu, ISO week 18
    event("c", "click", t(2026, 5, 1)),  # Fri 00:00 — the next UTC day
    event("c", "conversion", t(2026, 5, 1, 9), value=12.5),
    event("c", "impression", t(2026, 4, 26, 12), offer="off_b", channel="ch_email"),  # Sun, W17
    event("c", "dismiss", t(2026, 4, 26, 12, 5), offer="off_b", channel="ch_email"),
    event("c", "impression", t(2026, 5, 1, 11)),  # after as_of: not summarised
    event("c", "defer", t(2026, 3, 31, 8)),  # W14, March
    event("d", "impression", t(2026, 5, 1, 1)),
])


def test_rows_are_ordered_by_period_type_then_newest_period() -> None:
    rows = summaries(LOG, "c", as_of=AS_OF)
    assert [(r["periodType"], r["periodKey"], r["offerId"]) for r in rows] == [
        ("alltime", "all", "off_a"),
        ("alltime", "all", "off_b"),
        ("daily", "2026-05-01", "off_a"),
        ("daily", "2026-04-30", "off_a"),
        ("daily", "2026-04-26", "off_b"),
        ("daily", "2026-03-31", "off_a"),
        ("monthly", "2026-05", "off_a"),
        ("monthly", "2026-04", "off_a"),
        ("monthly", "2026-04", "off_b"),
        ("monthly", "2026-03", "off_a"),
        ("weekly", "2026-W18", "off_a"),
        ("weekly", "2026-W17", "off_b"),
        ("weekly", "2026-W14", "off_a"),
    ]


def test_counters_and_last_contact() -> None:
    rows = summaries(LOG, "c", as_of=AS_OF, period_type="weekly")
    assert rows[0] == {
        "customerId": "c", "offerId": "off_a", "periodType": "weekly", "periodKey": "2026-W18",
        "impressions": 1, "positive": 2, "negative": 0, "neutral": 0, "converts": 1,
        "totalValue": 12.5, "lastContactAt": "2026-05-01T09:00:00.000Z",
        "lastOutcomeKey": "conversion", "direction": "inbound",
    }
    alltime = summaries(LOG, "c", as_of=AS_OF, period_type="alltime", level="customer")
    assert alltime == [{
        "customerId": "c", "periodType": "alltime", "periodKey": "all", "impressions": 2,
        "positive": 2, "negative": 1, "neutral": 1, "converts": 1, "totalValue": 12.5,
        "lastContactAt": "2026-05-01T09:00:00.000Z", "lastOutcomeKey": "conversion",
        "direction": "inbound",
    }]


def test_filters_levels_and_limit() -> None:
    rows = summaries(LOG, "c", as_of=AS_OF, channel_id="ch_email", level="channel", limit=2)
    assert [(r["channelId"], r["periodType"], r["periodKey"], r["negative"]) for r in rows] == [
        ("ch_email", "alltime", "all", 1), ("ch_email", "daily", "2026-04-26", 1)]
    assert summaries(LOG, "c", as_of=AS_OF, offer_id="nope") == []
    cats = summaries(LOG, "c", as_of=AS_OF, level="category", period_type="monthly")
    assert [(r["categoryId"], r["periodKey"]) for r in cats] == [
        ("cat_1", "2026-05"), ("cat_1", "2026-04"), ("cat_1", "2026-03")]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"customer_id": ""}, "customerId"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"period_type": "hourly"}, "periodType"),
        ({"level": "segment"}, "level"),
    ],
)
def test_bad_requests_name_the_field(kwargs: dict, field: str) -> None:
    args = {"customer_id": "c", **kwargs}
    with pytest.raises(ValidationError) as exc:
        summaries(LOG, args.pop("customer_id"), as_of=AS_OF, **args)
    assert exc.value.field == field
    if field == "customerId":
        assert exc.value.message == "customerId is required"


def test_window_is_the_sum_of_the_last_daily_buckets() -> None:
    buckets = daily_buckets(LOG, as_of=AS_OF)
    week = window_totals(buckets, as_of=AS_OF, days=7)  # 2026-04-25 .. 2026-05-01
    daily = summaries_frame(buckets, period_types=("daily",)).filter(
        pl.col("periodKey") >= "2026-04-25"
    )
    summed = daily.group_by("customerId", "offerId").agg(pl.col(SUMMARY_COUNTERS).sum())
    assert_frame_equal(week.select("customerId", "offerId", *SUMMARY_COUNTERS),
                       summed.sort("customerId", "offerId"), check_dtypes=False)
    one = window_totals(buckets, as_of=AS_OF, days=1, level="customer")
    assert one.select("customerId", "impressions", "positive").rows() == [
        ("c", 0, 2), ("d", 1, 0)]
    with pytest.raises(ValidationError):
        window_totals(buckets, as_of=AS_OF, days=0)


def test_every_period_is_the_sum_of_its_days_and_matches_the_metrics() -> None:
    docs = starbucks.load_pack_documents()
    people = starbucks.generate_customers(150, seed=3)
    log = starbucks.generate_history(people, docs, days=60, as_of=AS_OF, seed=3)
    frame = summaries_frame(daily_buckets(log, as_of=AS_OF))
    keys = ["customerId", "offerId"]
    daily = frame.filter(pl.col("periodType") == "daily")
    for period, width in (("weekly", None), ("monthly", 7), ("alltime", None)):
        rolled = frame.filter(pl.col("periodType") == period)
        key = "periodKey" if period == "alltime" else None
        base = daily
        if width is not None:
            base = daily.with_columns(pl.col("periodKey").str.slice(0, width))
        elif period == "weekly":
            base = daily.with_columns(
                pl.col("periodKey").str.to_date().dt.strftime("%G-W%V")
            )
        group = [*keys] + ([] if key else ["periodKey"])
        summed = base.group_by(group).agg(pl.col(SUMMARY_COUNTERS).sum(),
                                          pl.col("lastContactAt").max())
        assert_frame_equal(rolled.select(*group, *SUMMARY_COUNTERS, "lastContactAt").sort(group),
                           summed.sort(group), check_dtypes=False)
    # a summary counter and a count metric over the same source agree
    metrics = [{"name": n, "aggregateFunction": "sum" if n == "totalValue" else "count",
                "sourceField": n} for n in SUMMARY_COUNTERS]
    values = compute_metrics(log, metrics, as_of=AS_OF)
    alltime = summaries_frame(daily_buckets(log, as_of=AS_OF), level="customer",
                              period_types=("alltime",))
    for name in SUMMARY_COUNTERS:
        got = dict(values.filter(pl.col("metric") == name).select("customer_id", "value").rows())
        want = {c: float(v) for c, v in alltime.select("customerId", name).rows() if v}
        assert {c: v for c, v in got.items() if v} == pytest.approx(want), name
