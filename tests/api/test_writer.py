"""The group-commit writer and the micro-batcher, driven by real commit/handler functions."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from api.batching import MicroBatcher, Pending, settle
from api.writer import GroupCommitWriter
from engine.errors import InternalError


def test_writes_are_acknowledged_after_their_commit_in_batches() -> None:
    committed: list[list[tuple[Any, ...]]] = []
    seen_at_ack: list[int] = []
    gate = threading.Event()

    def commit(rows: Any, traces: Any) -> None:
        gate.wait(5)  # hold the first batch so the others queue up behind it
        committed.append(list(rows))

    writer = GroupCommitWriter(commit)
    writer.start()

    async def run() -> list[Any]:
        applied: list[int] = []

        async def one(i: int) -> Any:
            result = await writer.write([(i,)], result=i, on_commit=lambda: applied.append(i))
            seen_at_ack.append(len(applied))
            assert i in applied  # the state update ran before the ack
            return result

        tasks = [asyncio.create_task(one(i)) for i in range(20)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks)

    try:
        assert asyncio.run(run()) == list(range(20))
    finally:
        writer.stop()
    assert sorted(r[0] for batch in committed for r in batch) == list(range(20))
    assert len(committed) < 20 and writer.batches == len(committed)


def test_a_failed_commit_fails_its_whole_batch_and_changes_no_state() -> None:
    def commit(rows: Any, traces: Any) -> None:
        raise OSError("disk full")

    writer = GroupCommitWriter(commit)
    writer.start()
    applied: list[int] = []

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(writer.write([(i,)], on_commit=lambda i=i: applied.append(i)) for i in range(5)),
            return_exceptions=True,
        )

    try:
        results = asyncio.run(run())
    finally:
        writer.stop()
    assert all(isinstance(r, InternalError) for r in results)
    assert "disk" not in str(results[0]) and applied == []


def test_batches_group_concurrent_items_and_isolate_failures() -> None:
    sizes: list[int] = []

    def handler(batch: list[Pending]) -> None:
        sizes.append(len(batch))
        for pending in batch:
            if pending.item == "bad":
                settle(pending, exc=ValueError("bad item"))
            elif pending.item != "forgotten":
                settle(pending, pending.item * 2)

    batcher = MicroBatcher(handler, window_s=0.005, max_batch=8)

    async def run() -> list[Any]:
        items = [1, 2, "bad", 3, "forgotten", *range(4, 14)]
        return await asyncio.gather(*(batcher.submit(i) for i in items),
                                    return_exceptions=True)

    try:
        results = asyncio.run(run())
    finally:
        batcher.close()
    assert results[:2] == [2, 4] and results[3] == 6
    assert isinstance(results[2], ValueError)
    assert isinstance(results[4], InternalError)  # never settled: failed, not hung
    assert results[5:] == [i * 2 for i in range(4, 14)]
    assert max(sizes) == 8 and sum(sizes) == 15 and len(sizes) < 15


@pytest.mark.parametrize("window", [0.0, 0.002])
def test_a_lone_item_is_not_kept_waiting(window: float) -> None:
    batcher = MicroBatcher(lambda batch: [settle(p, "ok") for p in batch], window_s=window)
    try:
        assert asyncio.run(asyncio.wait_for(batcher.submit(1), 2)) == "ok"
    finally:
        batcher.close()

