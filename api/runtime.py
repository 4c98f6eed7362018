"""The serving runtime: everything the app holds between requests.

One ``Runtime`` per app: the store, the API-key cache, the rate limiter, the per-tenant
in-memory working sets, the group-commit writer and the recommend micro-batcher. The app's
lifespan opens it (blocking work in a thread) and closes it, flushing queued writes.

``now()`` is the wall clock decisions and realtime metrics are computed at
(``ServingConfig.wall_clock``, injectable for tests; UTC now by default).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.auth import KeyCache
from api.lookups import CatalogLookups, build_lookups
from api.ratelimit import SlidingWindowLimiter
from api.state import MetricSet, StateConfig, TenantState, load_tenant, read_history
from api.writer import GroupCommitWriter
from engine.catalog import Catalog
from engine.errors import UnauthorizedError
from engine.settings import Settings
from engine.store import Store, serving
from engine.store.journal import JournaledLog

log = logging.getLogger("nextbest.api")


def open_store(settings: Settings) -> Store:
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
    return Store(settings.database_path, pepper=pepper)


@dataclass(frozen=True)
class ServingConfig:
    """Tuning of the serving runtime (defaults suit the 2-core reference box)."""

    batch_window_s: float = 0.001  # how long the first request of a batch waits for company
    max_batch: int = 64  # requests per decide call
    decide_workers: int = 1  # decide calls in flight at once
    max_write_rows: int = 5000  # rows per group commit
    state: StateConfig = field(default_factory=StateConfig)
    wall_clock: Callable[[], datetime] | None = None  # aware UTC "now"; None: the real one


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        config: ServingConfig | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or ServingConfig()
        self.limiter = SlidingWindowLimiter(settings.rate_limit_per_minute,
                                            clock=clock or time.monotonic)
        self.writer = GroupCommitWriter(self._commit, max_rows=self.config.max_write_rows)
        self._log: JournaledLog | None = None
        self.tenants: dict[str, TenantState] = {}
        self._store: Store | None = None
        self._keys: KeyCache | None = None
        self._lookups: dict[str, CatalogLookups] = {}
        self._load_lock = asyncio.Lock()
        # held by a group commit from its transaction until its rows are in memory, and by a
        # history reload from its store read until the swap: a reload never misses or
        # doubles a row
        self._history_lock = threading.Lock()

    def now(self) -> datetime:
        """The wall clock (aware UTC) decisions are made at."""
        clock = self.config.wall_clock
        return datetime.now(UTC) if clock is None else clock()

    # -- lifecycle -----------------------------------------------------------------------
    def open(self) -> None:
        """Open the store and load keys and every tenant's working set (blocking)."""
        store = self._store = open_store(self.settings)
        self._keys = KeyCache(store.api_keys.hash)
        scopes = {
            key.id: key.scopes for t in store.tenants.list_ids() for key in store.api_keys.list(t)
        }
        self._keys.load(
            (tenant, key_id, digest, expires, scopes.get(key_id, ()))
            for tenant, key_id, digest, expires in store.api_keys.active_hashes()
        )
        started = time.perf_counter()
        for tenant_id in store.tenants.list_ids():
            self.tenants[tenant_id] = self._load(tenant_id)
        log.info("loaded %d tenants in %.2fs", len(self.tenants), time.perf_counter() - started)
        # pyarrow imports pandas on its first array built from Python values (about a second
        # of CPU): pay that here, not in the first group commit
        serving.log_batch([])
        self._log = JournaledLog(store)
        self.writer.start()

    def close(self) -> None:
        self.writer.stop()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the runtime is not open")
        return self._store

    @property
    def keys(self) -> KeyCache:
        if self._keys is None:
            raise RuntimeError("the runtime is not open")
        return self._keys

    # -- tenants -------------------------------------------------------------------------
    def _load(self, tenant_id: str) -> TenantState:
        return load_tenant(self.store, tenant_id, self.now(), self.config.state)

    async def tenant(self, tenant_id: str) -> TenantState:
        """The tenant's working set, loaded on first use (tenants created after start)."""
        state = self.tenants.get(tenant_id)
        if state is not None:
            return state
        async with self._load_lock:
            state = self.tenants.get(tenant_id)
            if state is None:
                if not await asyncio.to_thread(self.store.tenants.exists, tenant_id):
                    raise UnauthorizedError(f"unknown tenant {tenant_id!r}", field="x-tenant-id")
                state = self.tenants[tenant_id] = await asyncio.to_thread(self._load, tenant_id)
        return state

    def catalog(self, tenant_id: str) -> Catalog:
        return self.store.load_catalog(tenant_id)

    def metric_set(self, state: TenantState, catalog: Catalog) -> MetricSet:
        """The tenant's active metrics at ``catalog``; the in-memory history is first widened
        (reloaded from the store, blocking) when they reach further back than it does."""
        metrics = state.metric_set(catalog, self.config.state.history_window)
        if not state.history.covers(metrics.window):
            with self._history_lock:
                if not state.history.covers(metrics.window):
                    started = time.perf_counter()
                    frame = read_history(self.store, state.tenant_id, self.now(),
                                         metrics.window, self.config.state)
                    state.history.reset(frame, window=metrics.window)
                    log.info("tenant %s: history reloaded over %s (%d rows) in %.2fs",
                             state.tenant_id, metrics.window or "all time", frame.height,
                             time.perf_counter() - started)
        return metrics

    def lookups(self, tenant_id: str) -> CatalogLookups:
        catalog = self.catalog(tenant_id)
        cached = self._lookups.get(tenant_id)
        if cached is None or cached.version != catalog.version:
            cached = self._lookups[tenant_id] = build_lookups(catalog)
        return cached

    # -- group commit --------------------------------------------------------------------
    def _commit(
        self, rows: Sequence[tuple[Any, ...]], traces: Sequence[tuple[str, dict[str, Any]]]
    ) -> None:
        """Writer thread: make the rows durable (journal), then visible to the next decision."""
        with self._history_lock:
            self._commit_locked(rows, traces)

    def _commit_locked(
        self, rows: Sequence[tuple[Any, ...]], traces: Sequence[tuple[str, dict[str, Any]]]
    ) -> None:
        if self._log is None:
            raise RuntimeError("the runtime is not open")
        self._log.commit(rows, traces)
        by_tenant: dict[str, list[tuple[Any, ...]]] = {}
        skips = self.config.state.history_skips
        for r in rows:  # BATCH_COLUMNS order -> HISTORY_SCHEMA order
            if r[10] in skips:
                continue
            by_tenant.setdefault(r[0], []).append(
                (r[2], r[3], r[4], r[5], r[6], r[7], r[10], r[11], r[12], r[13], r[14])
            )
        for tenant_id, history in by_tenant.items():
            state = self.tenants.get(tenant_id)
            if state is not None:
                state.history.add_rows(history)
