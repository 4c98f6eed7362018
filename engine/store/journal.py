"""The log journal: group commits made durable in a file beside the database, then moved
into DuckDB in larger transactions.

Every acknowledged write must be durable first. A DuckDB transaction costs about 2 ms of
CPU and hands the GIL over about ten times, whatever its size; appending the same rows to
a file costs one ``write`` and one ``fdatasync``. So the serving writer appends each group
commit to ``<database>.journal`` and ``JournaledLog`` moves the journaled rows into the
``interactions`` table a few times a second, before any read of the database and at
shutdown.

File: a header (magic, generation), then records (payload length, CRC-32, payload: the
rows in ``BATCH_COLUMNS`` order as JSON). A flush inserts every journaled row and records
the file's generation in ``journal_state`` in ONE transaction, then starts the file over
with the next generation. Opening the store replays a journal whose generation is newer
than the recorded one, so its rows land exactly once whatever the moment of a crash; a
torn last record (a crash mid-append, never acknowledged) is dropped.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from engine.store import serving

if TYPE_CHECKING:
    from engine.store.store import Store

log = logging.getLogger("nextbest.store")
MAGIC = b"NBJ1"
_HEADER = struct.Struct("<4sQ")  # magic, generation
_RECORD = struct.Struct("<II")  # payload length, crc32
_TS = serving.BATCH_COLUMNS.index("ts")
Row = tuple[Any, ...]


def journal_path(db_path: Path) -> Path | None:
    """``<database>.journal``; None for an in-memory database (nothing outlives it)."""
    if str(db_path) == ":memory:":
        return None
    return db_path.with_name(db_path.name + ".journal")


def recorded_generation(cur: Any) -> int:
    """The generation of the last journal the database absorbed."""
    row = cur.execute("SELECT max(generation) FROM journal_state").fetchall()
    return int(row[0][0] or 0) if row else 0


def _record_generation(cur: Any, generation: int) -> None:
    cur.execute("UPDATE journal_state SET generation = ?", [generation])


def read_journal(path: Path) -> tuple[int, list[Row]]:
    """The generation and rows of a journal file; (0, []) when it is missing or has no
    valid header. Reading stops at the first torn or corrupt record."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0, []
    if len(data) < _HEADER.size:
        return 0, []
    magic, generation = _HEADER.unpack_from(data)
    if magic != MAGIC:
        return 0, []
    return generation, list(_rows(data, _HEADER.size))


def _rows(data: bytes, at: int) -> Iterator[Row]:
    while at + _RECORD.size <= len(data):
        length, crc = _RECORD.unpack_from(data, at)
        start = at + _RECORD.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        for row in orjson.loads(payload):
            if row[_TS] is not None:
                row[_TS] = datetime.fromisoformat(row[_TS])
            yield tuple(row)
        at = start + length


class Journal:
    """The open journal file of one generation (appends from one thread at a time)."""

    def __init__(self, path: Path, generation: int) -> None:
        self.path = path
        self.generation = generation
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._start(generation)

    def _start(self, generation: int) -> None:
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, _HEADER.pack(MAGIC, generation), 0)
        os.fdatasync(self._fd)
        self.generation = generation
        self.size = _HEADER.size

    def append(self, rows: Sequence[Row]) -> None:
        """Durable when this returns. A failed append leaves the file as it was."""
        payload = orjson.dumps(rows)
        record = _RECORD.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            os.pwrite(self._fd, record, self.size)
            os.fdatasync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self.size)
            raise
        self.size += len(record)

    def restart(self) -> None:
        """Start over with the next generation (every row so far is in the database)."""
        self._start(self.generation + 1)

    def close(self) -> None:
        os.close(self._fd)


def recover(store: Store) -> int:
    """Move the rows of a journal left by a stopped or crashed server into the database
    (exactly once); returns how many rows it moved."""
    path = journal_path(store.db.path)
    generation, rows = read_journal(path) if path is not None else (0, [])
    if not rows:
        return 0
    with store.db.transaction() as cur:
        if generation <= recorded_generation(cur):
            return 0  # absorbed already: the crash came before the file started over
        serving.insert_log(cur, serving.log_batch(rows))
        _record_generation(cur, generation)
    return len(rows)


class JournaledLog:
    """Group commits for the serving writer: journal first, the database in bulk.

    ``commit`` is durable when it returns. Journaled rows reach DuckDB when ``due`` (enough
    rows, or old enough), when a commit carries decision traces (they are read by id right
    after the answer), before any other use of the database (``barrier``) and on
    ``close``. Without a journal (in-memory database, or after the file failed) every
    commit goes to DuckDB directly. Thread-safe."""

    def __init__(self, store: Store, *, max_rows: int = 5000, max_age_s: float = 0.2) -> None:
        self.store = store
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._lock = threading.RLock()
        self._owner: int | None = None  # the thread flushing (its own reads pass through)
        self._pending: list[Row] = []
        self._since = 0.0
        path = journal_path(store.db.path)
        self._journal: Journal | None = None
        if path is not None:
            with store.db.transaction() as cur:
                generation = recorded_generation(cur) + 1
            self._journal = Journal(path, generation)
        store.db.barrier = self.barrier

    def commit(self, rows: Sequence[Row], traces: Sequence[tuple[str, dict[str, Any]]]) -> None:
        if traces or self._journal is None:
            self.flush(rows, traces)
            return
        with self._lock:
            journal = self._journal
            if journal is not None:
                journal.append(rows)
                if not self._pending:
                    self._since = time.monotonic()
                self._pending.extend(rows)
                due = self.due()
        if journal is None:  # given up meanwhile
            self.flush(rows)
            return
        if due:
            try:
                self.flush()
            except Exception:  # the rows are durable in the journal: the commit stands
                log.exception("moving journaled rows into the database failed; retrying later")

    def due(self) -> bool:
        return bool(self._pending) and (
            len(self._pending) >= self.max_rows
            or time.monotonic() - self._since >= self.max_age_s
        )

    def flush(
        self, rows: Sequence[Row] = (), traces: Sequence[tuple[str, dict[str, Any]]] = ()
    ) -> None:
        """Move the journaled rows (and ``rows``, ``traces``) into the database: ONE
        transaction. Locks in this order only: the database's write lock, then ours (a
        thread in a catalog transaction may pass the barrier)."""
        with self.store.db.write_lock, self._lock:
            self._flush_locked(rows, traces)

    def tick(self) -> None:
        """Flush if due (the writer calls this when it has nothing else to do)."""
        if self.due():
            self.flush()

    def barrier(self) -> None:
        """Before a read of the database: every acknowledged row must be in it."""
        if self._pending and self._owner != threading.get_ident():
            self.flush()

    def _flush_locked(
        self, rows: Sequence[Row] = (), traces: Sequence[tuple[str, dict[str, Any]]] = ()
    ) -> None:
        if not self._pending and not rows and not traces:
            return
        journal = self._journal
        self._owner = threading.get_ident()
        try:
            serving.commit_batch(
                self.store, serving.log_batch([*self._pending, *rows]), traces,
                on_transaction=None if journal is None
                else lambda cur: _record_generation(cur, journal.generation),
            )
            self._pending = []
            if journal is not None:
                try:
                    journal.restart()
                except OSError:
                    # appending to the absorbed generation would hide rows from recovery
                    log.exception("the journal could not start over; committing directly")
                    self._journal = None
                    journal.close()
        finally:
            self._owner = None

    def close(self) -> None:
        with self.store.db.write_lock, self._lock:
            self._flush_locked()
            self.store.db.barrier = None
            if self._journal is not None:
                self._journal.close()
                self._journal = None


__all__ = ["Journal", "JournaledLog", "journal_path", "read_journal", "recover"]
