"""Interaction summaries (spec §14.2–14.3): daily UTC buckets, every period a sum of buckets.

``daily_buckets`` groups the log (rows with ``ts <= as_of``) per UTC calendar day and
``customer × offer × creative × channel × category × outcome`` (with the outcome's
classification and direction) into ``count``, ``sum_value`` and ``last_ts``. Every coarser
view is an exact sum of those buckets, never a separate count:

* ``summaries_frame`` / ``summaries`` — rows of the §14.3 shape per customer and level
  (offer, creative, channel, category or the customer as a whole): ``periodType`` daily
  (``2026-05-01``), weekly (ISO week ``2026-W18``), monthly (``2026-05``) or alltime
  (``all``), the counters ``impressions, positive, negative, neutral, converts, totalValue``,
  and ``lastContactAt`` / ``lastOutcomeKey`` / ``direction`` of the period's latest
  interaction (any outcome; on equal timestamps the greater outcome key).
* ``window_totals`` — a §14.2 window (``7d``) = the sum of the last 7 daily buckets, the
  ``as_of`` day included; changing a window needs no reprocessing.

Counters mean exactly what the behavioural metrics' summary-counter sources mean
(``engine.metrics.compile.source_predicate``): a summary's ``positive`` equals a ``count`` of
``positive`` over the same period.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import polars as pl

from engine.errors import ValidationError
from engine.metrics.compile import SUMMARY_COUNTERS, source_predicate
from engine.metrics.compute import utc

PeriodType = Literal["daily", "weekly", "monthly", "alltime"]
PERIOD_TYPES: tuple[PeriodType, ...] = ("alltime", "daily", "monthly", "weekly")  # sorted
Level = Literal["offer", "creative", "channel", "category", "customer"]
# level -> (log column, API field)
LEVELS: dict[str, tuple[str, str] | None] = {
    "offer": ("offer_id", "offerId"),
    "creative": ("creative_id", "creativeId"),
    "channel": ("channel_id", "channelId"),
    "category": ("category_id", "categoryId"),
    "customer": None,
}
BUCKET_KEYS = (
    "customer_id",
    "day",
    "offer_id",
    "creative_id",
    "channel_id",
    "category_id",
    "outcome",
    "classification",
    "direction",
)
BUCKET_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "day": pl.Date(),
    "offer_id": pl.String(),
    "creative_id": pl.String(),
    "channel_id": pl.String(),
    "category_id": pl.String(),
    "outcome": pl.String(),
    "classification": pl.String(),
    "direction": pl.String(),
    "count": pl.Int64(),
    "sum_value": pl.Float64(),
    "last_ts": pl.Datetime("us", "UTC"),
}
MAX_LIMIT = 200
_PERIOD_FORMATS = {"daily": "%Y-%m-%d", "weekly": "%G-W%V", "monthly": "%Y-%m"}


def daily_buckets(history: pl.DataFrame | pl.LazyFrame, *, as_of: datetime) -> pl.DataFrame:
    """The log's rows up to ``as_of`` summed per UTC day and bucket key (``BUCKET_SCHEMA``)."""
    lf = history.lazy()
    ts_type = lf.collect_schema()["ts"]
    ts = pl.col("ts")
    if getattr(ts_type, "time_zone", None):
        ts = ts.dt.convert_time_zone("UTC")
    else:
        ts = ts.dt.replace_time_zone("UTC")
    ts = ts.cast(pl.Datetime("us", "UTC"))
    cutoff = pl.lit(utc(as_of), dtype=pl.Datetime("us", "UTC"))
    return (
        lf.with_columns(ts.alias("ts"))
        .filter((pl.col("ts") <= cutoff) & pl.col("customer_id").is_not_null())
        .with_columns(pl.col("ts").dt.date().alias("day"))
        .group_by(list(BUCKET_KEYS))
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            pl.col("value").sum().alias("sum_value"),
            pl.col("ts").max().alias("last_ts"),
        )
        .select(list(BUCKET_SCHEMA))
        .cast(BUCKET_SCHEMA)  # type: ignore[arg-type]
        .collect()
    )


def _counters() -> list[pl.Expr]:
    out = []
    for name in SUMMARY_COUNTERS:
        if name == "totalValue":
            out.append(pl.col("sum_value").sum().alias(name))
        else:
            out.append(pl.col("count").filter(source_predicate(name)).sum().alias(name))
    order = ["last_ts", "outcome"]
    out += [
        pl.col("last_ts").max().alias("lastContactAt"),
        pl.col("outcome").sort_by(order).last().alias("lastOutcomeKey"),
        pl.col("direction").sort_by(order).last().alias("direction"),
    ]
    return out


def _level(level: str) -> tuple[list[str], dict[str, str]]:
    if level not in LEVELS:
        raise ValidationError(
            f"level must be one of {', '.join(LEVELS)}, got {level!r}", field="level"
        )
    spec = LEVELS[level]
    return ([spec[0]], {spec[0]: spec[1]}) if spec else ([], {})


def summaries_frame(
    buckets: pl.DataFrame,
    *,
    level: Level = "offer",
    period_types: tuple[PeriodType, ...] | None = None,
) -> pl.DataFrame:
    """Rows of the §14.3 shape for every customer in ``buckets`` (from ``daily_buckets``)."""
    keys, rename = _level(level)
    wanted = PERIOD_TYPES if period_types is None else period_types
    for p in wanted:
        if p not in PERIOD_TYPES:
            raise ValidationError(
                f"periodType must be one of daily, weekly, monthly, alltime, got {p!r}",
                field="periodType",
            )
    if keys:
        buckets = buckets.filter(pl.col(keys[0]).is_not_null())
    lf = buckets.lazy()
    parts = []
    for period in PERIOD_TYPES:
        if period not in wanted:
            continue
        key = (
            pl.lit("all")
            if period == "alltime"
            else pl.col("day").dt.strftime(_PERIOD_FORMATS[period])
        )
        parts.append(
            lf.with_columns(key.alias("periodKey"))
            .group_by(["customer_id", *keys, "periodKey"])
            .agg(_counters())
            .with_columns(pl.lit(period).alias("periodType"))
        )
    columns = [
        "customerId", *rename.values(), "periodType", "periodKey", *SUMMARY_COUNTERS,
        "lastContactAt", "lastOutcomeKey", "direction",
    ]
    if not parts:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.String()))
    out = pl.concat(parts).rename({"customer_id": "customerId", **rename}).select(columns)
    sort = ["customerId", "periodType", "periodKey", *rename.values()]
    return out.sort(sort, descending=[False, False, True, *[False] * len(rename)]).collect()


def summaries(
    history: pl.DataFrame | pl.LazyFrame,
    customer_id: str,
    *,
    as_of: datetime,
    period_type: PeriodType | None = None,
    level: Level = "offer",
    offer_id: str | None = None,
    channel_id: str | None = None,
    limit: int = MAX_LIMIT,
) -> list[dict[str, Any]]:
    """One customer's summary rows (``GET /interaction-summaries``), JSON-ready.

    Ordered periodType asc, periodKey desc (then the level's id); at most ``limit`` (≤ 200).
    ``offer_id`` / ``channel_id`` restrict the interactions summed.
    """
    if not customer_id:
        raise ValidationError("customerId is required", field="customerId")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    lf = history.lazy().filter(pl.col("customer_id") == customer_id)
    if offer_id is not None:
        lf = lf.filter(pl.col("offer_id") == offer_id)
    if channel_id is not None:
        lf = lf.filter(pl.col("channel_id") == channel_id)
    buckets = daily_buckets(lf, as_of=as_of)
    periods = None if period_type is None else (period_type,)
    rows = summaries_frame(buckets, level=level, period_types=periods).head(limit)
    return [_json(r) for r in rows.to_dicts()]


def window_totals(
    buckets: pl.DataFrame,
    *,
    as_of: datetime,
    days: int,
    level: Level = "offer",
) -> pl.DataFrame:
    """Counters over the last ``days`` UTC daily buckets (the ``as_of`` day included)."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise ValidationError(f"days must be an integer from 1 to 3650, got {days!r}",
                              field="windows")
    keys, rename = _level(level)
    last: date = utc(as_of).date()
    first = last - timedelta(days=days - 1)
    rows = buckets.filter(pl.col("day").is_between(first, last))
    if keys:
        rows = rows.filter(pl.col(keys[0]).is_not_null())
    return (
        rows.group_by(["customer_id", *keys])
        .agg(_counters())
        .with_columns(pl.lit(f"{days}d").alias("window"))
        .rename({"customer_id": "customerId", **rename})
        .sort(["customerId", *rename.values()])
    )


def _json(row: dict[str, Any]) -> dict[str, Any]:
    ts = row.get("lastContactAt")
    if isinstance(ts, datetime):
        row["lastContactAt"] = ts.astimezone(UTC).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )
    return row
