"""Micro-batching: requests that arrive together are handled by one call in a worker thread.

``submit`` queues an item with a future on the event loop. The first item of an idle batcher
starts a short timer (``window_s``, ~1 ms) so its neighbours can join; when it fires, every
queued item (up to ``max_batch``) goes to ``handler`` in the worker thread. While a batch
runs, new items queue up and go as the next batch the moment the worker is free, so batches
grow with load instead of latency growing with queue length.

The handler owns the futures: it settles each one, from its thread, with ``settle`` (or hands
it to the writer, which settles it after the commit). Whatever it leaves unsettled when it
returns or raises is failed with an internal error, so no request waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InternalError

log = logging.getLogger("nextbest.api")


@dataclass(eq=False)
class Pending:
    item: Any
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    settled: bool = field(default=False)  # settled, or handed to the writer to settle


def _set(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(value)
    else:
        future.set_exception(exc)


def settle(pending: Pending, value: Any = None, exc: BaseException | None = None) -> None:
    """Resolve a pending item from any thread."""
    pending.settled = True
    with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting
        pending.loop.call_soon_threadsafe(_set, pending.future, value, exc)


class MicroBatcher:
    def __init__(
        self,
        handler: Callable[[list[Pending]], None],
        *,
        window_s: float = 0.001,
        max_batch: int = 64,
        workers: int = 1,
        name: str = "batch",
    ) -> None:
        self.handler = handler
        self.window_s = window_s
        self.max_batch = max_batch
        self.workers = workers
        self._queue: list[Pending] = []
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self.batches = 0
        self.items = 0

    async def submit(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        pending = Pending(item, loop, loop.create_future())
        self._queue.append(pending)
        if self._running < self.workers:
            if len(self._queue) >= self.max_batch:
                self._dispatch(loop)
            elif self._timer is None:
                self._timer = loop.call_later(self.window_s, self._dispatch, loop)
        return await pending.future

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue and self._running < self.workers:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            self._running += 1
            self.batches += 1
            self.items += len(batch)
            done = self._executor.submit(self._run, batch)
            done.add_done_callback(lambda _f: loop.call_soon_threadsafe(self._finished, loop))

    def _finished(self, loop: asyncio.AbstractEventLoop) -> None:
        self._running -= 1
        if self._queue:
            self._dispatch(loop)  # they have waited a whole batch already

    def _run(self, batch: list[Pending]) -> None:
        try:
            self.handler(batch)
        except BaseException:  # noqa: BLE001 - reported to every waiter below
            log.exception("batch handler failed")
        for pending in batch:
            if not pending.settled:
                settle(pending, exc=InternalError("the decision could not be made"))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
