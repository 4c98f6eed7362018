"""A small hand-written interaction log whose metric values are worked out by hand in the tests.

``AS_OF`` = 2026-05-01 10:00 UTC. Customers:

* c1 — a busy customer: impressions at the 7-day edge (exactly 7 days old: excluded from a
  7-day window), at ``as_of`` itself (included) and one hour after ``as_of`` (never counted);
  clicks on off_a/ch_web and off_b/ch_email (the latter 1 µs inside the 7-day window);
  conversions worth 20.0 (10 min ago), 10.0 (10 days ago) and one without a value (40 days).
* c2 — two impressions, no click (CTR 0); one of them has no channel.
* c3 — one click, no impression (CTR has a zero denominator: null).
* c4 — one conversion without a value (avg null, sum 0).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from engine.catalog import HISTORY_SCHEMA

AS_OF = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)

CLASSIFICATION = {
    "impression": "neutral",
    "click": "positive",
    "conversion": "positive",
    "convert": "positive",
    "dismiss": "negative",
    "defer": "neutral",
    "purchase": "positive",
}


def event(
    customer: str,
    outcome: str,
    ts: datetime,
    *,
    offer: str | None = "off_a",
    channel: str | None = "ch_web",
    value: float | None = None,
    creative: str | None = None,
    category: str | None = "cat_1",
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "offer_id": offer,
        "creative_id": creative or (None if offer is None else f"cr_{offer}_{channel}"),
        "channel_id": channel,
        "placement_id": None,
        "category_id": category,
        "outcome": outcome,
        "classification": CLASSIFICATION.get(outcome),
        "direction": "outbound" if outcome == "impression" else "inbound",
        "ts": ts,
        "value": value,
    }


def history(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA, orient="row" if not rows else None)


GOLDEN_ROWS = [
    event("c1", "impression", AS_OF - timedelta(hours=1)),
    event("c1", "click", AS_OF - timedelta(minutes=30)),
    event("c1", "conversion", AS_OF - timedelta(minutes=10), value=20.0),
    event("c1", "impression", AS_OF - 7 * DAY, offer="off_b", channel="ch_email"),
    event("c1", "click", AS_OF - 7 * DAY + US, offer="off_b", channel="ch_email"),
    event("c1", "conversion", AS_OF - 10 * DAY, offer="off_b", channel="ch_email", value=10.0),
    event("c1", "dismiss", AS_OF - 2 * DAY, channel="ch_email"),
    event("c1", "impression", AS_OF + timedelta(hours=1)),
    event("c1", "conversion", AS_OF - 40 * DAY, offer="off_b", value=None),
    event("c1", "impression", AS_OF),
    event("c2", "impression", AS_OF - 3 * DAY),
    event("c2", "impression", AS_OF - 4 * DAY, channel=None),
    event("c3", "click", AS_OF - DAY),
    event("c4", "conversion", AS_OF - DAY, value=None),
]


@pytest.fixture
def golden() -> pl.DataFrame:
    return history(GOLDEN_ROWS)
