"""The log journal: acknowledged rows survive a crash exactly once, and reads see them."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine.store import Store
from engine.store.journal import Journal, JournaledLog, journal_files, read_journal

ROOT = Path(__file__).resolve().parents[3]
TS = datetime(2026, 11, 29, 10, 30, 0, 123456)


def row(n: int, **over: Any) -> tuple[Any, ...]:
    values = {"outcome": "click", "ts": TS, "value": None}
    values.update(over)
    return ("acme", f"ix-{n}", f"C-{n % 7}", "off-1", "cr-1", "email", None, "cat-1", None,
            None, values["outcome"], "positive", "inbound", values["ts"], values["value"], None,
            f"key-{n}")


def count(store: Store) -> int:
    return store.interactions.count("acme")


def journaled(db: Path) -> list[tuple[Any, ...]]:
    """Every row in the journal files beside ``db``, oldest file first."""
    return [r for _, path in journal_files(db) for r in read_journal(path)[1]]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "nextbest.duckdb"
    store = Store(path, pepper="test-pepper")
    store.tenants.create("acme")
    store.close()
    yield path


def test_records_read_back_until_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "x.journal"
    journal = Journal(path, generation=7)
    journal.append([row(1), row(2, value=2.5, ts=datetime(2026, 1, 1))])
    journal.append([row(3, outcome="it's \"quoted\" ✓")])
    journal.close()
    whole = path.read_bytes()
    with path.open("ab") as fh:  # a record cut short by a crash mid-append
        fh.write(whole[-40:-5])
    generation, rows = read_journal(path)
    assert generation == 7
    assert rows == [row(1), row(2, value=2.5, ts=datetime(2026, 1, 1)),
                    row(3, outcome="it's \"quoted\" ✓")]
    path.write_bytes(whole[:-1])  # a corrupt last record is dropped, the others kept
    assert read_journal(path) == (7, [row(1), row(2, value=2.5, ts=datetime(2026, 1, 1))])
    assert read_journal(tmp_path / "missing.journal") == (0, [])


def test_reads_of_the_database_see_journaled_rows(db: Path) -> None:
    store = Store(db, pepper="test-pepper")
    log = JournaledLog(store, max_age_s=3600)
    try:
        log.commit([row(1), row(2)], [])
        assert journaled(db) == [row(1), row(2)]  # not in DuckDB yet
        assert count(store) == 2  # the read moved them first
        assert journaled(db) == []
        log.commit([row(3)], [("acme", {"id": "tr-1", "customerId": "C-1"})])
        assert store.traces.get("acme", "tr-1")["id"] == "tr-1"  # traces go straight in
        assert count(store) == 3
    finally:
        log.close()
        store.close()


def test_rows_move_in_once_old_enough_with_nothing_else_happening(db: Path) -> None:
    store = Store(db, pepper="test-pepper")
    log = JournaledLog(store, max_age_s=0.05)
    try:
        time.sleep(0.05)  # the flusher is idle, waiting for work
        log.commit([row(1)], [])
        deadline = time.monotonic() + 10
        while journaled(db) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert journaled(db) == []  # moved without a read or a close asking for it
    finally:
        log.close()
        store.close()


def test_the_flusher_moves_rows_once_due(db: Path) -> None:
    store = Store(db, pepper="test-pepper")
    log = JournaledLog(store, max_rows=3, max_age_s=0.05)
    try:
        log.commit([row(1), row(2)], [])
        log.commit([row(3)], [])  # three rows: due, sealed, moved by the flusher
        log.commit([row(4)], [])  # old enough after 50 ms: moved too
        deadline = time.monotonic() + 10
        while journaled(db) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert journaled(db) == []
        assert [g for g, _ in journal_files(db)] == [3]  # only the current, empty file
    finally:
        log.close()  # close moves the rest and removes the current file
        store.close()
    assert journal_files(db) == []
    store = Store(db, pepper="test-pepper")
    assert count(store) == 4 and store.recovered_rows == 0
    store.close()


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from tests.engine.store.test_journal import row
    from engine.store import Store
    from engine.store.journal import JournaledLog

    store = Store(sys.argv[1], pepper="test-pepper")
    log = JournaledLog(store, max_rows=50, max_age_s=3600)
    for n in range(100):  # two files of 50 sealed, maybe moved
        log.commit([row(n)], [])
    log._flush_lock.acquire()  # the flusher stalls: what is sealed now stays a file
    for n in range(100, 170):  # one more sealed file, then 20 rows in the current one
        log.commit([row(n)], [])
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_writer_loses_nothing_and_doubles_nothing(db: Path) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED, str(db)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    left = journaled(db)
    assert len(left) >= 70 and len(journal_files(db)) >= 2
    store = Store(db, pepper="test-pepper")
    assert store.recovered_rows == len(left)
    ids = [r[0] for r in store.db.cursor().execute(
        "SELECT id FROM interactions WHERE tenant_id = 'acme'").fetchall()]
    store.close()
    assert sorted(ids) == sorted(f"ix-{n}" for n in range(170))
    assert journal_files(db) == []
    store = Store(db, pepper="test-pepper")  # opening again replays nothing
    assert store.recovered_rows == 0 and count(store) == 170
    store.close()


def test_a_file_already_moved_is_not_moved_again(db: Path) -> None:
    """A crash between a file's transaction and its deletion leaves it behind."""
    store = Store(db, pepper="test-pepper")
    log = JournaledLog(store, max_age_s=3600)
    log.commit([row(1), row(2)], [])
    first = journal_files(db)[0]
    kept = first[1].read_bytes()
    assert count(store) == 2  # moved, recorded, deleted
    log.close()
    store.close()
    first[1].write_bytes(kept)  # as if the deletion never happened
    store = Store(db, pepper="test-pepper")
    assert store.recovered_rows == 0 and count(store) == 2
    assert journal_files(db) == []
    store.close()
