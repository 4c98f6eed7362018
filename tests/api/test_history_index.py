"""The in-memory history: a read returns exactly the rows of its customers, whatever mix of
base rows, folded commits, pending commits and compactions holds them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl

from api.state import HistoryIndex, rows_frame
from engine.catalog.snapshot import HISTORY_SCHEMA

NOW = datetime(2026, 11, 29, 12, 0)


def rows(rnd: random.Random, n: int, start: int) -> list[tuple[object, ...]]:
    return [
        (f"C{rnd.randint(1, 12)}", f"off-{start + i}", "cr", "email", None, "cat", "click",
         "positive", "inbound", NOW - timedelta(minutes=rnd.randint(0, 600)), None)
        for i in range(n)
    ]


def key(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return sorted(frame.rows())


def test_reads_match_a_plain_filter_through_folds_and_compactions() -> None:
    rnd = random.Random(3)
    every = rows(rnd, 40, 0)
    index = HistoryIndex(rows_frame(every), window=None)
    offer = 40
    for step in range(30):
        batch = rows(rnd, rnd.randint(0, 9), offer)
        offer += len(batch)
        index.add_rows(batch)
        every += batch
        if step % 3 == 0:  # reads fold the pending rows
            ids = rnd.sample([f"C{i}" for i in range(1, 14)], 4)
            got = index.frame_for(ids).collect()
            want = rows_frame(every).filter(pl.col("customer_id").is_in(ids))
            assert key(got) == key(want)
        if step % 7 == 6:
            index.maybe_compact(NOW.replace(tzinfo=UTC), min_rows=0)
    # commits folded in while a compaction works stay in the delta, at shifted positions
    late = rows(rnd, 8, offer)
    every += late
    original = HistoryIndex._index

    def index_while_rows_arrive(frame: pl.DataFrame) -> object:
        index.add_rows(late)
        index.frame_for(["C1"])  # folds them
        return original(frame)

    index.add_rows(extra := rows(rnd, 30, offer + 8))
    every += extra
    index.frame_for(["C1"])
    index._index = index_while_rows_arrive  # type: ignore[method-assign]
    assert index.compaction_due(min_rows=0) and not index.compaction_due(min_rows=10**6)
    assert index.maybe_compact(NOW.replace(tzinfo=UTC), min_rows=0)
    assert index._delta.height == len(late)
    everyone = [f"C{i}" for i in range(1, 13)]
    assert key(index.frame_for(everyone).collect()) == key(rows_frame(every))
    assert index.frame_for(["nobody"]).collect().schema == pl.Schema(HISTORY_SCHEMA)
