"""Group commit: one writer thread turns queued writes into one transaction per batch.

Handlers (or the recommend batcher's thread) enqueue a ``WriteJob`` and await its future.
The writer takes everything queued (up to ``max_rows``), commits it with ONE call (one Arrow
INSERT and one fsync for the whole batch), then, on the event loop that owns each job, runs
the job's ``on_commit`` (the in-memory state update) and resolves its future. A request is
therefore acknowledged only after its rows are durable and visible to the next request. A
failed commit fails every job of the batch and changes no state.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InternalError

log = logging.getLogger("nextbest.api")

CommitFn = Callable[[Sequence[tuple[Any, ...]], Sequence[tuple[str, dict[str, Any]]]], None]


@dataclass
class WriteJob:
    rows: list[tuple[Any, ...]]
    traces: list[tuple[str, dict[str, Any]]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    result: Any = None
    on_commit: Callable[[], None] | None = None
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.rows) + len(self.traces)


class GroupCommitWriter:
    def __init__(self, commit: CommitFn, *, max_rows: int = 5000) -> None:
        self._commit = commit
        self.max_rows = max_rows
        self._queue: list[WriteJob] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="nextbest-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Flush what is queued, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, *jobs: WriteJob) -> None:
        """Queue jobs (any thread). Each future resolves on its ``job.loop`` after the commit."""
        with self._cond:
            if self._stopping:
                raise InternalError("the server is shutting down")
            self._queue.extend(jobs)
            self._cond.notify()

    async def write(
        self,
        rows: list[tuple[Any, ...]],
        traces: list[tuple[str, dict[str, Any]]] | None = None,
        *,
        result: Any = None,
        on_commit: Callable[[], None] | None = None,
    ) -> Any:
        """Queue rows from the event loop and wait until they are committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.submit(WriteJob(rows, traces or [], loop, future, result, on_commit))
        return await future

    def _take(self) -> list[WriteJob] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                return None
            jobs, size = [], 0
            while self._queue and (not jobs or size + self._queue[0].size <= self.max_rows):
                job = self._queue.pop(0)
                jobs.append(job)
                size += job.size
            return jobs

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            rows = [row for job in jobs for row in job.rows]
            traces = [t for job in jobs for t in job.traces]
            error: BaseException | None = None
            try:
                self._commit(rows, traces)
                self.batches += 1
                self.rows += len(rows)
            except BaseException as exc:  # noqa: BLE001 - every waiter must hear about it
                log.exception("group commit of %d rows failed", len(rows))
                error = exc
            by_loop: dict[asyncio.AbstractEventLoop, list[WriteJob]] = {}
            for job in jobs:
                by_loop.setdefault(job.loop, []).append(job)
            for loop, loop_jobs in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_resolve, loop_jobs, error)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    if error is None:
                        for job in loop_jobs:
                            if job.on_commit is not None:
                                job.on_commit()


def _resolve(jobs: list[WriteJob], error: BaseException | None) -> None:
    for job in jobs:
        if error is None and job.on_commit is not None:
            try:
                job.on_commit()
            except Exception:  # the rows are durable; a cache update must not fail them
                log.exception("in-memory update after commit failed")
        if job.future.done():
            continue
        if error is None:
            job.future.set_result(job.result)
        else:
            job.future.set_exception(
                InternalError("the interaction could not be recorded; retry the request")
            )
