from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from engine.store import Store
from engine.store.interaction_queries import decisions_since


def test_decisions_since_counts_rank_one_recommendations_of_the_tenant(store: Store) -> None:
    ts = datetime(2026, 5, 1, 12, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "id": [f"i{i}" for i in range(6)],
            "customer_id": ["c1"] * 6,
            "offer_id": ["o1", "o2", "o1", "o1", "o1", "o1"],
            "recommendation_id": ["r1", "r1", "r2", "r3", None, "r4"],
            "rank": [1, 2, 1, 1, None, 1],
            "outcome": ["recommendation"] * 4 + ["click", "recommendation"],
            "ts": [ts, ts, ts + timedelta(days=1), ts - timedelta(days=3), ts, ts],
        }
    )
    store.interactions.append("acme", frame)
    store.interactions.append("globex", frame.with_columns(pl.col("id") + "g"))
    # r1, r2 and r4 answered since then; r3 before; the click and rank 2 are no answers
    assert decisions_since(store, "acme", datetime(2026, 5, 1)) == 3
    assert decisions_since(store, "acme", datetime(2026, 5, 2)) == 1
    assert decisions_since(store, "nobody", datetime(2026, 5, 1)) == 0
