"""The DuckDB file: one connection per process, one cursor per thread, ordered migrations."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from engine.errors import ConflictError, InternalError, NextbestError, ValidationError
from engine.store._migrations import MIGRATIONS, SCHEMA_VERSION


def utcnow() -> datetime:
    """Naive UTC, the store's timestamp convention (microsecond precision)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_id(prefix: str) -> str:
    """Time-ordered id: ``prefix_<12 hex ms><8 hex random>`` sorts by creation time."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


class Database:
    """Owns the DuckDB connection. Thread-safe: each thread gets its own cursor."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(
                str(path),
                config={"autoload_known_extensions": False, "autoinstall_known_extensions": False},
            )
        except duckdb.IOException as exc:
            raise ConflictError(
                f"cannot open database {path}: {exc}. Only one process may open a DuckDB file; "
                "stop the other nextbest process or choose another NEXTBEST_DATABASE_PATH.",
                field="databasePath",
            ) from exc
        self._local = threading.local()
        self.write_lock = threading.RLock()
        # called before every use of the database: the serving log journal moves the rows
        # it holds into the database first (``engine.store.journal``)
        self.barrier: Callable[[], None] | None = None
        self.migrate()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        barrier = self.barrier
        if barrier is not None:
            barrier()
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
        return cur

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction under the process-wide write lock; rolled back on error."""
        with self.write_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException as exc:
                cur.execute("ROLLBACK")
                _drop_views(cur)
                if isinstance(exc, duckdb.ConstraintException):
                    raise ValidationError(
                        f"the data breaks a database constraint: {exc}", field="body"
                    ) from exc
                raise
            else:
                try:
                    cur.execute("COMMIT")
                except duckdb.Error as exc:
                    raise InternalError("the database refused to commit") from exc

    def schema_version(self) -> int:
        cur = self.cursor()
        exists = cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchall()
        exists = exists[0] if exists else None
        if not exists or not exists[0]:
            return 0
        row = cur.execute("SELECT max(version) FROM schema_version").fetchall()
        row = row[0] if row else None
        return int(row[0] or 0) if row else 0

    def migrate(self) -> int:
        """Apply pending migrations in order; a no-op on a current file. Returns steps applied."""
        with self.write_lock:
            current = self.schema_version()
            if current > SCHEMA_VERSION:
                raise NextbestError(
                    f"database schema version {current} is newer than this nextbest "
                    f"({SCHEMA_VERSION}); upgrade nextbest"
                )
            cur = self.cursor()
            if current == 0:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
                )
            applied = 0
            for version in range(current + 1, SCHEMA_VERSION + 1):
                cur.execute("BEGIN TRANSACTION")
                try:
                    for statement in MIGRATIONS[version - 1]:
                        cur.execute(statement)
                    cur.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utcnow()])
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                applied += 1
            return applied

    def close(self) -> None:
        self._con.close()


def _drop_views(cur: duckdb.DuckDBPyConnection) -> None:
    """Forget Arrow batches registered by a failed transaction (the names are reused)."""
    for name in ("_log_batch", "_customers_batch"):
        with suppress(duckdb.Error):
            cur.unregister(name)


def fsync_directory(path: Path) -> None:
    """Make the names in a directory (a file just created or renamed) survive a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pepper_for(db_path: Path, configured: str | None) -> bytes:
    """The API-key pepper: configured secret, else a random one kept beside the database."""
    if configured:
        return configured.encode()
    if str(db_path) == ":memory:":
        return secrets.token_bytes(32)
    side = db_path.with_name(db_path.name + ".pepper")
    if side.exists():
        return side.read_bytes()
    value = secrets.token_hex(32).encode()
    fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
    return value
