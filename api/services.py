"""The per-app service objects the routes call (one call per handler).

Each service turns one request into one blocking store or engine call run in a worker
thread (``asyncio.to_thread``), so the event loop never waits on DuckDB or Polars.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from api.keys import KeyManager
from api.responding import Responder
from api.runtime import Runtime
from api.schemas import PowerRequest, TenantSettings
from engine.catalog import Catalog
from engine.errors import ConflictError, ValidationError
from engine.metrics import metrics_wide, summaries
from engine.store.interaction_queries import decisions_since, interaction_history
from engine.store.metric_values import value_counts
from engine.store.tenants import require_tenant

MAX_METRICS = 20  # behavioural metric definitions per tenant (spec §14.1)
TRAFFIC_DAYS = 14  # the power calculator's default daily traffic: this many days' average


class TraceReader:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def get(self, tenant_id: str, trace_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.runtime.store.traces.get, tenant_id, trace_id)

    async def list(
        self, tenant_id: str, customer_id: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        traces, total = await asyncio.to_thread(
            self.runtime.store.traces.list, tenant_id, customer_id=customer_id, limit=limit,
            offset=offset,
        )
        return {"traces": traces, "total": total, "limit": limit, "offset": offset}


class BehavioralMetrics:
    """``/behavioral-metrics``: CRUD over ``store.behavioral_metrics`` (the store validates
    each definition by compiling it) and the realtime values the recommend path serves."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._create_lock = threading.Lock()  # the 20-definition limit: count + insert

    @property
    def repo(self) -> Any:
        return self.runtime.store.behavioral_metrics

    async def list(
        self, tenant_id: str, limit: int, cursor: str | None, include_deleted: bool
    ) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            page = self.repo.list(tenant_id, limit=limit, cursor=cursor,
                                  include_deleted=include_deleted)
            counts = value_counts(self.runtime.store, tenant_id)
            data = [{**d, "_count": {"values": counts.get(d.get("name", ""), 0)}}
                    for d in page.data]
            body = page.to_dict()
            return {"data": data, "total": page.total, "hasMore": page.has_more,
                    "pagination": body["pagination"]}

        return await asyncio.to_thread(read)

    async def get(self, tenant_id: str, metric_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.repo.get, tenant_id, metric_id)

    async def create(self, tenant_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        def create() -> dict[str, Any]:
            with self._create_lock:
                existing = len(self.repo.all_active(tenant_id))
                if existing >= MAX_METRICS:
                    raise ValidationError(
                        f"a tenant can have at most {MAX_METRICS} behavioral metrics and this "
                        f"one has {existing}; delete one first",
                        field="behavioralMetrics",
                    )
                return self.repo.create(tenant_id, doc)

        return await asyncio.to_thread(create)

    async def update(self, tenant_id: str, metric_id: str | None, changes: dict[str, Any]
                     ) -> dict[str, Any]:
        metric_id = metric_id or _body_id(changes)
        return await asyncio.to_thread(self.repo.update, tenant_id, metric_id, changes)

    async def delete(self, tenant_id: str, metric_id: str) -> None:
        await asyncio.to_thread(self.repo.delete, tenant_id, metric_id)

    async def values(self, tenant_id: str, customer_id: str | None) -> dict[str, Any]:
        """One customer's values as the recommend path computes them right now: the long
        rows (as ``metric_values`` stores them) and the ``metrics.<name>`` columns rules
        read (count/sum without events: 0)."""
        if not customer_id:
            raise ValidationError("customerId is required", field="customerId")
        state = await self.runtime.tenant(tenant_id)

        def compute() -> dict[str, Any]:
            now = self.runtime.now()
            metrics = self.runtime.metric_set(state, self.runtime.catalog(tenant_id))
            long = metrics.values(state.history.frame_for([customer_id]), now)
            wide = metrics_wide(long, [customer_id], metrics.metrics).drop("customer_id")
            return {
                "customerId": customer_id,
                "asOf": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                "values": [
                    {"metric": m, "groupKey": g, "value": v}
                    for m, g, v in long.sort("metric", "group_key", nulls_last=False)
                    .select("metric", "group_key", "value").iter_rows()
                ],
                "columns": wide.to_dicts()[0] if wide.width else {},
                "skipped": dict(metrics.skipped),
            }

        return await asyncio.to_thread(compute)


def _body_id(changes: Mapping[str, Any]) -> str:
    value = changes.get("id")
    if not isinstance(value, str) or not value:
        raise ValidationError("id is required: send it in the body or the path", field="id")
    return value


class Experiments:
    """``/experiments``: CRUD, results from the log, the power calculator."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._write_lock = threading.Lock()  # one active experiment per tenant

    @property
    def repo(self) -> Any:
        return self.runtime.store.experiments

    async def list(self, tenant_id: str, limit: int, cursor: str | None,
                   include_deleted: bool) -> dict[str, Any]:
        page = await asyncio.to_thread(self.repo.list, tenant_id, limit=limit, cursor=cursor,
                                       include_deleted=include_deleted)
        return page.to_dict()

    async def get(self, tenant_id: str, experiment_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.repo.get, tenant_id, experiment_id)

    async def create(self, tenant_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        def create() -> dict[str, Any]:
            with self._write_lock:
                self._check(tenant_id, doc, None)
                return _duplicate_key_is_invalid(self.repo.create, tenant_id, doc)

        return await asyncio.to_thread(create)

    async def update(self, tenant_id: str, experiment_id: str, changes: dict[str, Any]
                     ) -> dict[str, Any]:
        """Merge the given top-level fields (``variants`` is replaced wholesale)."""

        def update() -> dict[str, Any]:
            with self._write_lock:
                current = self.repo.get(tenant_id, experiment_id)
                self._check(tenant_id, {**current, **changes}, experiment_id)
                return _duplicate_key_is_invalid(self.repo.update, tenant_id, experiment_id,
                                                 changes)

        return await asyncio.to_thread(update)

    async def delete(self, tenant_id: str, experiment_id: str | None) -> None:
        if not experiment_id:
            raise ValidationError("id is required", field="id")
        await asyncio.to_thread(self.repo.delete, tenant_id, experiment_id)

    def _check(self, tenant_id: str, doc: Mapping[str, Any], own_id: str | None) -> None:
        """What the document model cannot check: references into the catalog, creative
        weights in range, and at most one active experiment per tenant."""
        catalog = self.runtime.catalog(tenant_id)
        _check_variants(catalog, doc.get("variants"))
        if doc.get("status") == "active":
            for other in catalog.documents.get("experiments", ()):
                if other.get("status") == "active" and other["id"] != own_id:
                    raise ConflictError(
                        f"experiment {other.get('key')!r} is already active; pause or complete "
                        "it before activating another (one active experiment per tenant)",
                        field="status",
                    )

    async def results(self, tenant_id: str, experiment_id: str, alpha: float | None
                      ) -> dict[str, Any]:
        from pipelines.experiments import analyze, arm_stats_sql

        def compute() -> dict[str, Any]:
            doc = self.repo.get(tenant_id, experiment_id)
            arms = arm_stats_sql(self.runtime.store, tenant_id, doc)
            results = analyze(arms, doc, alpha=alpha).to_dict()
            return {"experimentId": doc["id"], "status": doc.get("status"), **results}

        return await asyncio.to_thread(compute)

    async def power(self, tenant_id: str, body: PowerRequest) -> dict[str, Any]:
        from pipelines.experiments import power

        def compute() -> dict[str, Any]:
            daily = body.dailyTraffic
            if daily is None:
                daily = self._daily_decisions(tenant_id)
            return power(
                body.baselineConversionRate, body.minimumDetectableEffect,
                mde_type=body.mdeType, alpha=body.significanceLevel, power=body.power,
                split=body.trafficSplit, daily_traffic=daily,
            )

        return await asyncio.to_thread(compute)

    def _daily_decisions(self, tenant_id: str) -> float | None:
        since = (self.runtime.now() - timedelta(days=TRAFFIC_DAYS)).replace(tzinfo=None)
        n = decisions_since(self.runtime.store, tenant_id, since)
        return n / TRAFFIC_DAYS if n else None


def _duplicate_key_is_invalid(write: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Spec §15.1: a duplicate experiment key is a 400, not a 409."""
    try:
        return write(*args, **kwargs)
    except ConflictError as exc:
        if exc.field != "key":
            raise
        raise ValidationError(exc.message, field="key") from None


def _check_variants(catalog: Catalog, variants: Any) -> None:
    if not isinstance(variants, list):
        return  # the document model reports it
    flows = {f["id"] for f in catalog.decision_flows} | {f["key"] for f in catalog.decision_flows}
    creatives = set(catalog.creatives.get_column("creative.id").to_list())
    for i, variant in enumerate(variants):
        if not isinstance(variant, Mapping):
            continue
        flow = variant.get("decisionFlowId")
        if isinstance(flow, str) and flow not in flows:
            raise ValidationError(
                f"variants.{i}.decisionFlowId: decision flow {flow!r} does not exist",
                field=f"variants.{i}.decisionFlowId",
            )
        weights = variant.get("creativeWeights")
        if not isinstance(weights, Mapping):
            continue
        for creative, weight in weights.items():
            where = f"variants.{i}.creativeWeights.{creative}"
            if creative not in creatives:
                raise ValidationError(f"{where}: creative {creative!r} does not exist",
                                      field=where)
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                raise ValidationError(f"{where}: a weight is an integer from 0 to 100",
                                      field=where)


class Interactions:
    """``/interaction-summaries`` and ``/interaction-history`` over the durable log."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def summaries(
        self, tenant_id: str, customer_id: str | None, *, period_type: str | None,
        offer_id: str | None, channel_id: str | None, level: str, limit: int,
    ) -> dict[str, Any]:
        """The customer's §14.3 counters from every interaction on record (all time), as of
        now; decision records (``recommendation`` rows) are not interactions and do not
        count."""
        if not customer_id:
            raise ValidationError("customerId is required", field="customerId")

        def compute() -> dict[str, Any]:
            store = self.runtime.store
            require_tenant(store.db.cursor(), tenant_id)
            history = store.interactions.history(tenant_id, [customer_id])
            history = history.filter(history["outcome"] != "recommendation")
            rows = summaries(history, customer_id, as_of=self.runtime.now(),
                             period_type=period_type,  # type: ignore[arg-type]
                             level=level,  # type: ignore[arg-type]
                             offer_id=offer_id, channel_id=channel_id, limit=limit)
            return {"data": rows, "total": len(rows), "limit": limit}

        return await asyncio.to_thread(compute)

    async def history(self, tenant_id: str, **filters: Any) -> dict[str, Any]:
        page = await asyncio.to_thread(interaction_history, self.runtime.store, tenant_id,
                                       **filters)
        return page.to_dict()


class TenantSettingsService:
    """``/tenant-settings``: the tenant's settings JSON; a PUT deep-merges the given keys
    (``null`` removes one) and takes effect on the next decision (``holdoutPercentage``)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()

    async def get(self, tenant_id: str) -> dict[str, Any]:
        found = await asyncio.to_thread(self.runtime.store.tenants.get, tenant_id)
        return found.get("settings") or {}

    async def put(self, tenant_id: str, body: TenantSettings) -> dict[str, Any]:
        state = await self.runtime.tenant(tenant_id)
        changes = body.model_dump(exclude_unset=True)

        def write() -> dict[str, Any]:
            store = self.runtime.store
            with self._lock:
                settings = _merge(store.tenants.get(tenant_id).get("settings") or {}, changes)
                store.tenants.set_settings(tenant_id, settings)
                state.settings = settings
                return settings

        return await asyncio.to_thread(write)


def _merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Services:
    runtime: Runtime
    keys: KeyManager
    responder: Responder
    traces: TraceReader
    recommender: Any
    metrics: BehavioralMetrics
    experiments: Experiments
    interactions: Interactions
    settings: TenantSettingsService

    @classmethod
    def build(cls, runtime: Runtime) -> Services:
        from api.recommending import Recommender

        return cls(runtime, KeyManager(runtime), Responder(runtime), TraceReader(runtime),
                   Recommender(runtime), BehavioralMetrics(runtime), Experiments(runtime),
                   Interactions(runtime), TenantSettingsService(runtime))
