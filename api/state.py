"""The serving working set: per tenant, what a request reads, held in memory.

Loaded from the store when the app starts (or when a tenant is first seen) and kept in step
with every group commit, so the request path never queries DuckDB:

- ``CustomerIndex``: the customer rows (``customer_id`` + ``customer.*``) and a dict from id
  to row number; a batch of requests gathers its customers in one ``take``.
- ``HistoryIndex``: the recent interaction history (``HISTORY_SCHEMA``, a trailing window,
  90 days by default; without the ``recommendation`` decision records, which no node reads)
  as a base frame sorted by customer with row offsets, plus a delta frame of everything
  committed since; merged into the base when the delta grows. The window is widened to the
  longest ``windowDays`` of the tenant's active behavioural metrics, and becomes all-time
  when one of them has no window (``MetricSet.window``), so a metric computed from memory
  sees every row the batch refresh reads. Widening reloads the tenant's history from the
  store (the decide worker and the writer wait for the read); an all-time metric
  therefore keeps the tenant's whole log in memory, which bounds the tenants it suits.
  Metrics over ``recommendation`` rows (``sourceField: recommendation``) read 0 in realtime,
  since those decision records are not held.
- ``MetricSet``: the tenant's active behavioural metrics compiled once per catalog version;
  ``metric_frame`` turns them into ``metrics.<name>`` customer columns.
- ``Recommendations``: the decision rows of recent recommendations by id (bounded, oldest
  evicted; a miss falls back to the store), so Respond resolves ``recommendationId + rank``.
- ``Idempotency``: every seen idempotency key with what its Respond returned, plus the keys
  whose write is in flight (so concurrent duplicates wait for the first one).

DuckDB remains the durable truth; everything here can be rebuilt from it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from engine.catalog import Catalog
from engine.catalog.snapshot import HISTORY_SCHEMA
from engine.errors import ValidationError
from engine.metrics import CompiledMetric, compile_metric, empty_long, metrics_wide, realtime_values
from engine.store import serving

_HISTORY_COLUMNS = tuple(HISTORY_SCHEMA)
COMPACT_MIN_ROWS = 20_000


class CustomerIndex:
    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        ids = frame.get_column("customer_id").cast(pl.String).to_list()
        self._rows = {cid: i for i, cid in enumerate(ids)}

    def __len__(self) -> int:
        return len(self._rows)

    def frame_for(self, ids: Iterable[str]) -> pl.DataFrame:
        """The rows of the known ids among ``ids`` (unknown customers are simply absent)."""
        rows = self._rows
        idx = [rows[i] for i in dict.fromkeys(ids) if i in rows]
        # a UInt32 series gathers in one call that releases the GIL (a list takes three)
        return self.frame[pl.Series(idx, dtype=pl.UInt32)] if idx else self.frame.clear()


def rows_frame(rows: Sequence[tuple[Any, ...]]) -> pl.DataFrame:
    """History rows (``HISTORY_SCHEMA`` order, naive-UTC ``ts``) as a ``HISTORY_SCHEMA`` frame.

    Built series by series: no call that hands the GIL over (a naive ``ts`` reads as UTC)."""
    columns = zip(*rows, strict=True) if rows else ([] for _ in HISTORY_SCHEMA)
    return pl.DataFrame(
        [pl.Series(name, col, dtype=dtype)
         for (name, dtype), col in zip(HISTORY_SCHEMA.items(), columns, strict=True)]
    )


class HistoryIndex:
    """Recent history: a base frame sorted by customer with row offsets, a delta frame of
    later commits with each customer's row positions, and the rows committed since the last
    read (plain tuples, turned into a frame only when a decision needs them: the writer
    thread stays cheap). A read gathers its customers' rows by position from both."""

    def __init__(self, frame: pl.DataFrame, *, window: timedelta | None) -> None:
        self.window = window  # None: all time (rows are never dropped)
        self._lock = threading.Lock()  # guards the references below (held briefly)
        self._read_lock = threading.Lock()  # one reader folds pending rows at a time
        self._compacting = False
        self._generation = 0  # bumped by ``reset``: a compaction of older data is void
        self._base, self._offsets = self._index(frame)
        self._delta = pl.DataFrame(schema=HISTORY_SCHEMA)
        self._delta_rows: dict[str, list[int]] = {}  # customer -> positions in the delta
        self._pending: list[tuple[Any, ...]] = []

    @staticmethod
    def _index(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, tuple[int, int]]]:
        base = frame.select(_HISTORY_COLUMNS).sort("customer_id", "ts", maintain_order=True)
        if base.height == 0:
            return base, {}
        runs = (
            base.with_row_index("_i")
            .group_by("customer_id", maintain_order=True)
            .agg(pl.col("_i").first().alias("start"), pl.len().alias("n"))
        )
        offsets = dict(
            zip(
                runs.get_column("customer_id").to_list(),
                zip(runs.get_column("start").to_list(), runs.get_column("n").to_list(),
                    strict=True),
                strict=True,
            )
        )
        return base, offsets

    @property
    def height(self) -> int:
        return self._base.height + self._delta.height + len(self._pending)

    def add_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Committed rows in ``HISTORY_SCHEMA`` order with naive-UTC ``ts``. Any thread."""
        with self._lock:
            self._pending.extend(rows)

    def _fold(self, pending: list[tuple[Any, ...]]) -> None:
        frame = rows_frame(pending)
        with self._lock:
            start = self._delta.height
            for i, row in enumerate(pending):
                self._delta_rows.setdefault(row[0], []).append(start + i)
            self._delta = pl.concat([self._delta, frame], how="vertical", rechunk=False)

    def _snapshot(
        self,
    ) -> tuple[pl.DataFrame, dict[str, tuple[int, int]], pl.DataFrame, dict[str, list[int]]]:
        """Fold pending rows into the delta, then the current (base, offsets, delta,
        delta positions); positions past the delta's height belong to later folds."""
        with self._read_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            if pending:
                self._fold(pending)
            with self._lock:
                return self._base, self._offsets, self._delta, self._delta_rows

    def frame_for(self, ids: Sequence[str]) -> pl.LazyFrame:
        """All known rows of the given customers (base rows, then later commits), as a lazy
        frame: the gathers run inside the query that reads it, not as calls of their own
        (each call into Polars hands the GIL over, which a busy event loop makes slow)."""
        base, offsets, delta, delta_rows = self._snapshot()
        idx: list[int] = []
        later: list[int] = []
        n = delta.height
        for cid in dict.fromkeys(ids):
            span = offsets.get(cid)
            if span is not None:
                idx.extend(range(span[0], span[0] + span[1]))
            if n:
                later.extend(i for i in delta_rows.get(cid, ()) if i < n)
        parts = []
        if idx:
            parts.append(base.lazy().select(pl.all().gather(pl.Series(idx, dtype=pl.UInt32))))
        if later:
            parts.append(delta.lazy().select(pl.all().gather(pl.Series(later, dtype=pl.UInt32))))
        if not parts:
            return base.clear().lazy()
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")

    def all_rows(self) -> pl.DataFrame:
        base, _, delta, _ = self._snapshot()
        return pl.concat([base, delta], how="vertical") if delta.height else base

    def covers(self, window: timedelta | None) -> bool:
        """Whether the rows held reach ``window`` back (None: all time)."""
        return self.window is None or (window is not None and self.window >= window)

    def reset(self, frame: pl.DataFrame, *, window: timedelta | None) -> None:
        """Replace every row with ``frame`` (a fresh read of the store over ``window``).

        The caller must hold off commits while it reads the store and resets (rows
        committed before the read are in ``frame``; none may arrive in between)."""
        base, offsets = self._index(frame)
        with self._read_lock, self._lock:
            self._base, self._offsets = base, offsets
            self._delta = pl.DataFrame(schema=HISTORY_SCHEMA)
            self._delta_rows = {}
            self._pending = []
            self.window = window
            self._generation += 1

    def compaction_due(self, min_rows: int = COMPACT_MIN_ROWS) -> bool:
        """Whether the delta (and rows pending for it) has grown enough to compact."""
        with self._lock:
            grown = self._delta.height + len(self._pending)
            return not self._compacting and grown >= max(min_rows, self._base.height // 4)

    def maybe_compact(self, now: datetime, *, min_rows: int = COMPACT_MIN_ROWS) -> bool:
        """Fold the delta into the base (dropping rows older than the window) when it has
        grown; meant for a background thread. Returns whether it compacted."""
        with self._lock:
            generation = self._generation
        base, _, delta, _ = self._snapshot()
        with self._lock:
            if (self._compacting or generation != self._generation
                    or delta.height < max(min_rows, base.height // 4)):
                return False
            self._compacting = True
            window = self.window
        try:
            merged = pl.concat([base, delta], how="vertical")
            if window is not None:
                merged = merged.filter(pl.col("ts") >= now - window)
            new_base, new_offsets = self._index(merged)
            with self._lock:
                if generation == self._generation:
                    # rows folded in while we worked stay in the delta
                    done = delta.height
                    self._delta = self._delta.slice(done)
                    self._delta_rows = {
                        cid: kept for cid, rows in self._delta_rows.items()
                        if (kept := [i - done for i in rows if i >= done])
                    }
                    self._base, self._offsets = new_base, new_offsets
        finally:
            self._compacting = False
        return True


def intern_id(value: str | None) -> str | None:
    """Share one copy of the few distinct catalog ids across many cached rows."""
    return None if value is None else sys.intern(value)


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One ranked decision of a logged recommendation (for Respond's resolution)."""

    rank: int
    offer_id: str | None
    creative_id: str | None
    channel_id: str | None
    placement_id: str | None
    category_id: str | None


class Recommendations:
    """Decision rows by recommendation id, held as plain tuples of ids: the garbage collector
    stops tracking those, so a full cache does not lengthen every collection."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # an OrderedDict drops its oldest entry in O(1); a dict's first key is found by a
        # scan past every entry deleted before it (~17 us per put once full)
        self._by_id: OrderedDict[str, tuple[tuple[Any, ...], ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def load(self, frame: pl.DataFrame) -> None:
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for rec_id, rank, *refs in frame.iter_rows():
            grouped.setdefault(rec_id, []).append((rank, *map(intern_id, refs)))
        for rec_id, rows in grouped.items():
            self.put(rec_id, sorted(rows, key=lambda r: r[0]))

    def put(self, recommendation_id: str, rows: Iterable[tuple[Any, ...]]) -> None:
        """``rows``: ``(rank, offer_id, creative_id, channel_id, placement_id, category_id)``."""
        by_id = self._by_id
        by_id[recommendation_id] = tuple(rows)
        while len(by_id) > self.capacity:
            by_id.popitem(last=False)

    def get(self, recommendation_id: str) -> tuple[DecisionRow, ...] | None:
        rows = self._by_id.get(recommendation_id)
        return None if rows is None else tuple(DecisionRow(*r) for r in rows)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a Respond returned, replayed for a duplicate idempotency key."""

    interaction_id: str
    outcome: str
    classification: str | None
    offer_id: str | None


class Idempotency:
    """Seen keys and in-flight keys of one tenant. Event-loop thread only.

    Seen results are held as plain tuples (untracked by the garbage collector)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, str, str | None, str | None]] = {}
        self.pending: dict[str, asyncio.Future[Recorded]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def recall(self, key: str) -> Recorded | None:
        done = self._seen.get(key)
        return None if done is None else Recorded(*done)

    def remember(self, key: str, rec: Recorded) -> None:
        self._seen[key] = (rec.interaction_id, rec.outcome, rec.classification, rec.offer_id)

    def load(self, frame: pl.DataFrame) -> None:
        for key, interaction_id, outcome, classification, offer_id in frame.iter_rows():
            self._seen.setdefault(key, (interaction_id, intern_id(outcome),
                                        intern_id(classification), intern_id(offer_id)))


@dataclass(frozen=True)
class MetricSet:
    """The active behavioural metrics of one catalog version, compiled.

    ``window``: how far back the in-memory history must reach for them (None = all time,
    when a metric has no ``windowDays``). ``skipped``: active definitions that do not
    compile (stored before validation existed), by name, with the reason."""

    version: int
    metrics: tuple[CompiledMetric, ...]
    window: timedelta | None
    skipped: dict[str, str]

    @classmethod
    def of(cls, catalog: Catalog, base_window: timedelta) -> MetricSet:
        compiled: list[CompiledMetric] = []
        skipped: dict[str, str] = {}
        names: set[str] = set()
        for doc in catalog.documents.get("behavioral_metrics", ()):
            if doc.get("status", "active") != "active":
                continue
            try:
                metric = compile_metric(doc)
            except ValidationError as exc:
                skipped[str(doc.get("name") or doc.get("id"))] = exc.message
                continue
            if metric.name not in names:
                names.add(metric.name)
                compiled.append(metric)
        window: timedelta | None = base_window
        if any(m.window_days is None for m in compiled):
            window = None
        elif compiled:
            window = max(base_window, *(timedelta(days=m.window_days or 0) for m in compiled))
        return cls(catalog.version, tuple(compiled), window, skipped)

    def values(self, history: pl.DataFrame | pl.LazyFrame, as_of: datetime) -> pl.DataFrame:
        """Long values (``metric, customer_id, group_key, value``) of every customer in
        ``history`` as of ``as_of``: ONE ``realtime_values`` call, whatever the count."""
        if not self.metrics:
            return empty_long()
        return realtime_values(history, self.metrics, as_of)

    def customer_frame(
        self, customers: pl.DataFrame, ids: Sequence[str], long: pl.DataFrame
    ) -> pl.DataFrame:
        """``customers`` (rows of known customers) with ``metrics.<name>`` columns of the
        ungrouped metrics, one row per id in ``ids`` order (unknown customers get a row of
        null attributes and their metric values: 0 for count/sum without events)."""
        if not self.metrics:
            return customers
        wide = metrics_wide(long, list(dict.fromkeys(ids)), self.metrics)
        if wide.width == 1:  # only grouped metrics: nothing joins by customer
            return customers
        if customers.width == 1:
            return wide
        return wide.join(customers, on="customer_id", how="left", maintain_order="left")


class TenantState:
    def __init__(
        self,
        tenant_id: str,
        customers: CustomerIndex,
        history: HistoryIndex,
        recommendations: Recommendations,
        idempotency: Idempotency,
        settings: dict[str, Any] | None = None,
        metrics: MetricSet | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.customers = customers
        self.history = history
        self.recommendations = recommendations
        self.idempotency = idempotency
        self.settings: dict[str, Any] = settings or {}  # tenant settings (holdoutPercentage)
        self.base_flow_lock = threading.Lock()
        self._metrics = metrics

    def metric_set(self, catalog: Catalog, base_window: timedelta) -> MetricSet:
        """The compiled active metrics of ``catalog`` (cached per catalog version)."""
        cached = self._metrics
        if cached is None or cached.version != catalog.version:
            cached = self._metrics = MetricSet.of(catalog, base_window)
        return cached


@dataclass(frozen=True)
class StateConfig:
    history_window: timedelta = timedelta(days=90)
    recommendation_capacity: int = 100_000  # older ones are read back from the log
    # Log rows the decision engine never reads (it counts impressions and outcomes, not
    # the decision records themselves): kept in DuckDB, left out of the working set.
    history_skips: frozenset[str] = frozenset({"recommendation"})


def read_history(
    store: Any, tenant_id: str, now: datetime, window: timedelta | None, config: StateConfig
) -> pl.DataFrame:
    """The tenant's history rows over ``window`` back from ``now`` (None: all of them),
    without the ``history_skips`` outcomes."""
    recent = serving.recent_history(store, tenant_id, None if window is None else now - window)
    if config.history_skips:
        recent = recent.filter(~pl.col("outcome").is_in(list(config.history_skips)))
    return recent


def load_tenant(store: Any, tenant_id: str, now: datetime, config: StateConfig) -> TenantState:
    """Build one tenant's working set from the store (blocking; call from a thread)."""
    customers = CustomerIndex(serving.customer_frame(store, tenant_id))
    metrics = MetricSet.of(store.load_catalog(tenant_id), config.history_window)
    recent = read_history(store, tenant_id, now, metrics.window, config)
    history = HistoryIndex(recent, window=metrics.window)
    recommendations = Recommendations(config.recommendation_capacity)
    recommendations.load(
        serving.recent_recommendations(store, tenant_id, config.recommendation_capacity)
    )
    idempotency = Idempotency()
    idempotency.load(serving.idempotency_records(store, tenant_id))
    settings = store.tenants.get(tenant_id).get("settings") or {}
    return TenantState(tenant_id, customers, history, recommendations, idempotency,
                       settings=settings, metrics=metrics)
