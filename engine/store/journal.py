"""The log journal: group commits made durable in files beside the database, then moved
into DuckDB in larger transactions by a thread of their own.

Every acknowledged write must be durable first. A DuckDB transaction costs about 2 ms of
CPU and hands the GIL over about ten times, whatever its size, and now and then DuckDB
checkpoints inside a commit (100 ms and more); appending the same rows to a file costs
one ``write`` and one ``fdatasync``. So the serving writer appends each group commit to
the current journal file, ``<database>.journal.<generation>``, and ``JournaledLog`` seals
the file a few times a second (or sooner, before any read of the database) and starts
the next generation; a flusher thread moves each sealed file's rows into the
``interactions`` table and records its generation in ``journal_state`` in ONE
transaction, then deletes the file.

File: a header (magic, generation), then records (payload length, CRC-32, payload: the
rows in ``BATCH_COLUMNS`` order as JSON). Opening the store replays, in order, every
journal file newer than the recorded generation, so each row lands exactly once whatever
the moment of a crash; a torn last record (a crash mid-append, never acknowledged) is
dropped.
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
from engine.store._db import fsync_directory

if TYPE_CHECKING:
    from engine.store.store import Store

log = logging.getLogger("nextbest.store")
MAGIC = b"NBJ1"
_HEADER = struct.Struct("<4sQ")  # magic, generation
_RECORD = struct.Struct("<II")  # payload length, crc32
_TS = serving.BATCH_COLUMNS.index("ts")
Row = tuple[Any, ...]


def journal_path(db_path: Path, generation: int) -> Path | None:
    """``<database>.journal.<generation>``; None for an in-memory database."""
    if str(db_path) == ":memory:":
        return None
    return db_path.with_name(f"{db_path.name}.journal.{generation}")


def journal_files(db_path: Path) -> list[tuple[int, Path]]:
    """The journal files beside a database, oldest generation first."""
    if str(db_path) == ":memory:":
        return []
    prefix = f"{db_path.name}.journal."
    found = []
    for path in db_path.parent.glob(f"{db_path.name}.journal.*"):
        suffix = path.name[len(prefix):]
        if suffix.isdigit():
            found.append((int(suffix), path))
    return sorted(found)


def recorded_generation(cur: Any) -> int:
    """The generation of the last journal the database absorbed."""
    row = cur.execute("SELECT max(generation) FROM journal_state").fetchall()
    return int(row[0][0] or 0) if row else 0


def _record_generation(cur: Any, generation: int) -> None:
    cur.execute("DELETE FROM journal_state")  # one row, whatever was there
    cur.execute("INSERT INTO journal_state VALUES (?)", [generation])


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
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(self._fd, _HEADER.pack(MAGIC, generation))
            os.fdatasync(self._fd)
            fsync_directory(path.parent)  # the new name survives a power cut too
        except OSError:
            os.close(self._fd)
            raise
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

    def close(self) -> None:
        os.close(self._fd)


def recover(store: Store) -> int:
    """Move the rows of journal files left by a stopped or crashed server into the
    database, oldest first and exactly once; returns how many rows it moved."""
    moved = 0
    for generation, path in journal_files(store.db.path):
        with store.db.transaction() as cur:
            if generation > recorded_generation(cur):
                _, rows = read_journal(path)
                if rows:
                    serving.insert_log(cur, serving.log_batch(rows))
                    moved += len(rows)
                _record_generation(cur, generation)
        path.unlink(missing_ok=True)
    return moved


class JournaledLog:
    """Group commits for the serving writer: journal first, the database in bulk.

    ``commit`` is durable when it returns. The current file is sealed and handed to the
    flusher thread when ``due`` (enough rows, or old enough); a commit with decision traces
    goes to DuckDB directly (they are read by id right after the answer); ``barrier``
    (before any other use of the database) and ``close`` seal and move everything first.
    Without a journal (in-memory database, or after a file failed) every commit goes to
    DuckDB directly. Thread-safe.

    Locks, always taken in this order: the database's write lock, ``_flush_lock`` (one
    sealed file moved at a time, in order), ``_lock`` (the current file and its rows)."""

    def __init__(self, store: Store, *, max_rows: int = 5000, max_age_s: float = 0.2) -> None:
        self.store = store
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._flushing: int | None = None  # the thread moving rows (its reads pass through)
        self._pending: list[Row] = []  # the rows in the current file
        self._since = 0.0
        self._sealed: list[tuple[Journal, list[Row]]] = []  # oldest first
        self._journal: Journal | None = None
        with store.db.transaction() as cur:
            generation = recorded_generation(cur) + 1
        path = journal_path(store.db.path, generation)
        if path is not None:
            self._journal = Journal(path, generation)
        self._thread = threading.Thread(target=self._run, name="nextbest-journal",
                                        daemon=True)
        self._thread.start()
        store.db.barrier = self.barrier

    def commit(self, rows: Sequence[Row], traces: Sequence[tuple[str, dict[str, Any]]]) -> None:
        with self._lock:
            journal = None if traces else self._journal
            if journal is not None:
                journal.append(rows)
                first = not self._pending
                if first:
                    self._since = time.monotonic()
                self._pending.extend(rows)
                if self._due():
                    self._seal()
                if first or self._sealed:
                    self._wake.notify()  # the flusher times the rows' age from now on
        if journal is None:
            serving.commit_batch(self.store, serving.log_batch(rows), traces)

    def _due(self) -> bool:
        return bool(self._pending) and (
            len(self._pending) >= self.max_rows
            or time.monotonic() - self._since >= self.max_age_s
        )

    def _seal(self) -> None:
        """Hand the current file to the flusher and start the next generation (holds
        ``_lock``). A file that cannot be started leaves the log without a journal."""
        journal = self._journal
        if journal is None or not self._pending:
            return
        self._sealed.append((journal, self._pending))
        self._pending = []
        self._journal = None
        generation = journal.generation + 1
        path = journal_path(self.store.db.path, generation)
        try:
            self._journal = Journal(path, generation) if path is not None else None
        except OSError:
            log.exception("a new journal file could not be started; committing directly")

    def barrier(self) -> None:
        """Before a use of the database: every acknowledged row must be in it."""
        if (self._pending or self._sealed) and self._flushing != threading.get_ident():
            self.flush()

    def flush(self) -> None:
        """Seal the current file and move every sealed file into the database."""
        with self.store.db.write_lock, self._flush_lock:
            with self._lock:
                self._seal()
            self._move_sealed()

    def _move_sealed(self) -> None:
        """Holds the write lock and ``_flush_lock``: one transaction per sealed file."""
        self._flushing = threading.get_ident()
        try:
            while True:
                with self._lock:
                    if not self._sealed:
                        return
                    journal, rows = self._sealed[0]
                serving.commit_batch(
                    self.store, serving.log_batch(rows),
                    on_transaction=lambda cur, g=journal.generation: _record_generation(cur, g),
                )
                with self._lock:
                    self._sealed.pop(0)
                journal.close()
                journal.path.unlink(missing_ok=True)
        finally:
            self._flushing = None

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closing and not self._sealed and not self._due():
                    self._wake.wait(self.max_age_s / 2 if self._pending else None)
                if self._closing:
                    return
            try:
                self.flush()
            except Exception:  # the rows stay journaled: retried, and replayed at start
                log.exception("moving journaled rows into the database failed; retrying")
                time.sleep(1.0)

    def close(self) -> None:
        """Move every journaled row into the database and stop the flusher."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join()
        self.flush()
        with self._lock:
            self.store.db.barrier = None
            if self._journal is not None:
                self._journal.close()
                self._journal.path.unlink(missing_ok=True)
                self._journal = None


__all__ = ["Journal", "JournaledLog", "journal_files", "journal_path", "read_journal", "recover"]
