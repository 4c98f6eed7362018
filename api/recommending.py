"""Recommend: micro-batched ``engine.decide`` calls, logged by group commit.

The handler turns the body into a ``DecisionRequest`` (400 on bad input) and submits it to
the batcher. In the worker thread, a batch is split by (tenant, compiled flow); each group
is ONE ``decide`` call over the requests' customers and recent history, both gathered from
memory. Each request then gets its response, its log rows (one ``recommendation`` row per
decision, keyed by ``recommendationId`` + ``rank``; an ``impression`` row too on implicit
channels) and, with ``debug``, its trace; these go to the group-commit writer, which
answers the request once they are durable. A request whose group fails is retried alone,
so one bad request cannot fail its neighbours.

**Behavioural metrics.** Per tenant and micro-batch, ONE ``realtime_values`` call computes
every active metric (both compute modes) for all the batch's customers from the in-memory
history, as of the batch's ``now``; the ungrouped ones join the customers frame as
``metrics.<name>`` columns, which qualification and contact-policy ``metric_condition``
rules read. A respond is in memory before it is acknowledged, so the next recommend counts
it. Metrics grouped by offer/channel/creative are not joined (they would need a
candidate-level join inside ``decide``); rules on them read "missing" and pass.

**Experiments and holdout**: each request first gets its ``Arm`` (``api.arms``), which may
impose the holdout fallback flow, a variant's flow or a variant's creative weights.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson
import polars as pl

from api.arms import NO_ARM, Arm, Arms, arm_flow
from api.batching import MicroBatcher, Pending, settle
from api.flows import resolve_flow
from api.ids import new_id
from api.lookups import CatalogLookups
from api.runtime import Runtime
from api.schemas import RecommendRequest
from api.state import MetricSet, TenantState, intern_id
from api.writer import WriteJob
from engine.catalog import Catalog
from engine.decide import Decisions, decide
from engine.errors import InternalError, NextbestError
from engine.flow import (
    BASE_FLOW_KEY,
    CompiledFlow,
    DecisionRequest,
    base_nba_flow,
    compile_flow,
)
from engine.metrics import empty_long
from engine.scoring.evidence import Evidence, compute_evidence

log = logging.getLogger("nextbest.api")
EVIDENCE_TTL_S = 60.0
FLOW_CACHE_SIZE = 1024  # routing signatures per tenant
Row = tuple[Any, ...]
Resolved = tuple[Catalog, CompiledFlow]


@dataclass(slots=True)
class RecommendJob:
    tenant_id: str
    body: RecommendRequest
    request: DecisionRequest
    request_id: str
    started: float
    arm: Arm = NO_ARM  # set by the decide thread


@dataclass
class TenantBatch:
    """One tenant's share of a micro-batch: its history and metric values, read once."""

    state: TenantState
    ids: list[str]
    history: pl.LazyFrame
    metrics: MetricSet | None
    values: pl.DataFrame

    def history_for(self, ids: list[str]) -> pl.LazyFrame:
        if ids == self.ids:
            return self.history
        return self.history.filter(pl.col("customer_id").is_in(ids))

    def customers_for(self, ids: list[str]) -> pl.DataFrame:
        known = self.state.customers.frame_for(ids)
        if self.metrics is None:
            return known
        return self.metrics.customer_frame(known, ids, self.values)


def to_decision_request(body: RecommendRequest) -> DecisionRequest:
    limit = body.limit if body.limit is not None else body.maxOffers
    return DecisionRequest(
        customer_id=body.customerId,
        channel=body.channel,
        channel_id=body.channelId,
        placement=body.placement,
        limit=5 if limit is None else limit,
        attributes=body.attributes or {},
        segments=tuple(body.segments or ()),
        exclude_offers=tuple(body.excludeOffers or ()),
        exclude_creatives=tuple(body.excludeCreatives or ()),
        placements=tuple(p.model_dump() for p in body.placements or ()),
        deduplicate=body.deduplicate,
        debug=bool(body.debug or body.trace),
    )


def _public(exc: BaseException) -> BaseException:
    if isinstance(exc, NextbestError) and exc.http_status < 500:
        return exc
    log.error("recommend failed", exc_info=exc)
    return InternalError("the decision could not be made")


class Recommender:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        config = runtime.config
        self.batcher = MicroBatcher(
            self._handle, window_s=config.batch_window_s, max_batch=config.max_batch,
            workers=config.decide_workers, name="nextbest-decide",
        )
        self._evidence: dict[str, tuple[int, float, Evidence]] = {}  # tenant -> cached
        self.arms = Arms(runtime)
        # tenant -> (catalog snapshot, routing signature -> resolved flow)
        self._flows: dict[str, tuple[Catalog, dict[tuple[Any, ...], Resolved]]] = {}

    async def recommend(
        self, tenant_id: str, body: RecommendRequest, request_id: str
    ) -> dict[str, Any]:
        await self.runtime.tenant(tenant_id)
        job = RecommendJob(tenant_id, body, to_decision_request(body), request_id,
                           time.perf_counter())
        return await self.batcher.submit(job)

    def close(self) -> None:
        self.batcher.close()

    # -- worker thread -------------------------------------------------------------------
    def _handle(self, batch: list[Pending]) -> None:
        now = self.runtime.now()
        groups: dict[int, tuple[Catalog, CompiledFlow, list[Pending]]] = {}
        for pending in batch:
            job: RecommendJob = pending.item
            try:
                catalog = self.runtime.catalog(job.tenant_id)
                job.arm = self.arms.arm(job.tenant_id, job.request.customer_id or "", catalog)
                catalog, compiled = self._flow_for(job, catalog)
            except Exception as exc:
                settle(pending, exc=_public(exc))
                continue
            groups.setdefault(id(compiled), (catalog, compiled, []))[2].append(pending)
        tenants: dict[str, TenantBatch] = {}
        for tenant_id in {p.item.tenant_id for _, _, ps in groups.values() for p in ps}:
            ids = [p.item.request.customer_id or "" for _, _, ps in groups.values() for p in ps
                   if p.item.tenant_id == tenant_id]
            tenants[tenant_id] = self._tenant_batch(tenant_id, ids, now)
        for catalog, compiled, pendings in groups.values():
            self._decide(catalog, compiled, pendings, now, tenants[pendings[0].item.tenant_id])
        for tenant_id in {p.item.tenant_id for p in batch}:
            history = self.runtime.tenants[tenant_id].history
            if history.compaction_due():  # tens of ms: not on the decide thread
                threading.Thread(target=history.maybe_compact, args=(now,),
                                 name="nextbest-compact", daemon=True).start()

    def _tenant_batch(self, tenant_id: str, ids: list[str], now: datetime) -> TenantBatch:
        """The tenant's history for ``ids`` and every active metric's value, computed once
        for the whole batch (a failed metric computation is logged and the batch is decided
        without metric columns: rules on metrics then read "missing" and pass)."""
        state = self.runtime.tenants[tenant_id]
        metrics: MetricSet | None = None
        try:
            metrics = self.runtime.metric_set(state, self.runtime.catalog(tenant_id))
        except Exception:
            log.exception("tenant %s: behavioural metrics unavailable", tenant_id)
        history = state.history.frame_for(ids)
        values = empty_long()
        if metrics is not None and metrics.metrics:
            try:
                values = metrics.values(history, now)
            except Exception:
                log.exception("tenant %s: computing behavioural metrics failed", tenant_id)
                metrics = None
        return TenantBatch(state, ids, history, metrics, values)

    def _flow_for(self, job: RecommendJob, catalog: Catalog) -> Resolved:
        """The flow of ``job``, resolved once per catalog snapshot and routing signature
        (validating a flow document costs more than deciding for one customer)."""
        body = job.body
        signature = (
            job.arm, body.decisionFlowKey, body.blueprintKey, body.decisionFlowId,
            body.channelId, body.channel, body.placement,
            tuple(p.placementId for p in body.placements or ()),
        )
        cached = self._flows.get(catalog.tenant_id)
        if cached is None or cached[0] is not catalog or len(cached[1]) >= FLOW_CACHE_SIZE:
            cached = self._flows[catalog.tenant_id] = (catalog, {})
        hit = cached[1].get(signature)
        if hit is None:
            hit = cached[1][signature] = self._resolve_flow(job, catalog)
        return hit

    def _resolve_flow(self, job: RecommendJob, catalog: Catalog) -> Resolved:
        arm = job.arm
        doc = arm_flow(catalog, arm)
        if doc is None:
            doc = resolve_flow(catalog, self.runtime.lookups(job.tenant_id), job.body)
            if doc is None:
                catalog = self._ensure_base_flow(job.tenant_id)
                doc = catalog.flow_by_key(BASE_FLOW_KEY)
                assert doc is not None
        if arm.weights:
            catalog = self.arms.with_weights(catalog, arm)
        return catalog, compile_flow(catalog, doc)

    def _ensure_base_flow(self, tenant_id: str) -> Catalog:
        """Create the Base NBA flow for a tenant without flows (once, under a lock)."""
        state = self.runtime.tenants[tenant_id]
        with state.base_flow_lock:
            catalog = self.runtime.catalog(tenant_id)
            if not catalog.decision_flows:
                self.runtime.store.decision_flows.create(
                    tenant_id, base_nba_flow(published_at=self.runtime.now())
                )
                catalog = self.runtime.catalog(tenant_id)
            return catalog

    def _evidence_for(
        self, state: TenantState, catalog: Catalog, compiled: CompiledFlow, now: datetime
    ) -> Evidence | None:
        if compiled.propensity_k is None:
            return None
        hit = self._evidence.get(state.tenant_id)
        if (hit is None or hit[0] != catalog.version
                or time.monotonic() - hit[1] > EVIDENCE_TTL_S):
            evidence = compute_evidence(catalog, state.history.all_rows(), as_of=now)
            hit = self._evidence[state.tenant_id] = (catalog.version, time.monotonic(), evidence)
        return hit[2]

    def _decide(
        self,
        catalog: Catalog,
        compiled: CompiledFlow,
        pendings: list[Pending],
        now: datetime,
        batch: TenantBatch,
    ) -> None:
        jobs: list[RecommendJob] = [p.item for p in pendings]
        state = batch.state
        ids = [j.request.customer_id or "" for j in jobs]
        try:
            result = decide(
                catalog,
                batch.customers_for(ids),
                batch.history_for(ids),
                [j.request for j in jobs],
                as_of=now,
                flow=compiled,
                evidence=self._evidence_for(state, catalog, compiled, now),
            )
        except Exception as exc:
            if len(pendings) > 1:  # isolate: one bad request must not fail the others
                for pending in pendings:
                    self._decide(catalog, compiled, [pending], now, batch)
            else:
                settle(pendings[0], exc=_public(exc))
            return
        self._deliver(state, result, pendings, now)

    def _deliver(
        self, state: TenantState, result: Decisions, pendings: Sequence[Pending], now: datetime
    ) -> None:
        lookups = self.runtime.lookups(state.tenant_id)
        by_request: dict[int, list[tuple[Any, ...]]] = {}
        for row in _rows(result.decisions, DECISION_COLUMNS):
            by_request.setdefault(row[0], []).append(row)
        funnels = {row[0]: row[1:] for row in _rows(result.funnel, ("request_index", *FUNNEL))}
        traces = {t["request_index"]: t for t in result.trace_records()}
        writes: list[tuple[Pending, WriteJob]] = []
        for index, pending in enumerate(pendings):
            job: RecommendJob = pending.item
            try:
                response, rows, rec_rows, trace = _build(
                    job, by_request.get(index, []), funnels.get(index), traces.get(index),
                    result, lookups, now,
                )
                on_commit = partial(state.recommendations.put, response["recommendationId"],
                                    rec_rows)
                writes.append((pending, WriteJob(
                    rows, [(job.tenant_id, trace)] if trace else [], pending.loop,
                    pending.future, response, on_commit,
                )))
            except Exception as exc:
                settle(pending, exc=_public(exc))
        try:  # queued together, so the writer commits them together
            self.runtime.writer.submit(*(write for _, write in writes))
        except Exception as exc:
            for pending, _ in writes:
                settle(pending, exc=_public(exc))
            return
        for pending, _ in writes:
            pending.settled = True


def _rows(frame: pl.DataFrame, columns: Sequence[str]) -> list[Row]:
    """``frame``'s rows over ``columns``, read column by column (no query per call)."""
    return list(zip(*(frame.get_column(c).to_list() for c in columns), strict=True))


FUNNEL = ("candidateCount", "afterQualification", "afterContactPolicy", "finalCount")
DECISION_COLUMNS = (
    "request_index", "slot", "offer_id", "offer_name", "category_name", "creative_id",
    "channel_id", "placement_id", "score", "mandatory", "personalization", "content",
)


def _build(
    job: RecommendJob,
    rows: list[tuple[Any, ...]],
    funnel: tuple[Any, ...] | None,
    trace: dict[str, Any] | None,
    result: Decisions,
    lookups: CatalogLookups,
    now: datetime,
) -> tuple[dict[str, Any], list[Row], tuple[Row, ...], dict[str, Any] | None]:
    """The response, log rows, resolvable decision rows and trace of one request."""
    tenant, body, arm = job.tenant_id, job.body, job.arm
    rec_id = new_id("rec")
    ts = now.replace(tzinfo=None)
    context = orjson.dumps(body.context).decode() if body.context else None
    impression = lookups.outcomes.get("impression")
    imp_class = impression.classification if impression else "neutral"
    decisions, log_rows, rec_rows, by_slot = [], [], [], {}
    for rank, row in enumerate(rows, start=1):
        (_, slot, offer_id, offer_name, category_name, creative_id, channel_id, placement_id,
         score, mandatory, personalization, content) = row
        interaction_id = new_id("ix")
        category_id = lookups.offer_category.get(offer_id)
        decision = {
            "rank": rank,
            "offerId": offer_id,
            "offerName": offer_name,
            "categoryName": category_name,
            "creativeId": creative_id,
            "channelId": channel_id,
            "placementId": placement_id,
            "score": float(score) if score is not None else 0.0,
            "content": orjson.Fragment(content or "{}"),
            "personalization": orjson.Fragment(personalization or "{}"),
            "mandatory": bool(mandatory),
            "interactionId": interaction_id,
            "recommendationId": rec_id,
        }
        decisions.append(decision)
        by_slot.setdefault(slot, []).append(decision)
        base = (body.customerId, offer_id, creative_id, channel_id, placement_id, category_id,
                rec_id, rank)
        log_rows.append((tenant, interaction_id, *base, "recommendation", None, "outbound", ts,
                         None, context, None, arm.experiment_key, arm.variant))
        if channel_id in lookups.implicit_channels:
            log_rows.append((tenant, new_id("ix"), *base, "impression", imp_class, "outbound",
                             ts, None, context, None, arm.experiment_key, arm.variant))
        rec_rows.append((rank, *map(intern_id, (offer_id, creative_id, channel_id,
                                                placement_id, category_id))))
    response: dict[str, Any] = {
        "recommendationId": rec_id,
        "customerId": body.customerId,
        "count": len(decisions),
        "decisions": decisions,
        "controlGroup": arm.control_group,
        "degradedScoring": False,
    }
    assignment = None
    if arm.experiment_key is not None:
        assignment = {"key": arm.experiment_key, "variant": arm.variant}
        response["experiment"] = assignment
    if job.request.placements:
        response["placementResults"] = [
            {"placementId": slot_req.placement_id, "count": len(by_slot.get(i, [])),
             "decisions": by_slot.get(i, [])}
            for i, slot_req in enumerate(job.request.placements)
        ]
    trace_doc = None
    if job.request.debug:
        counts = dict(zip(FUNNEL, funnel or (0, 0, 0, 0), strict=True))
        duration = round((time.perf_counter() - job.started) * 1000, 3)
        response["meta"] = {
            "decisionFlowKey": result.flow_key,
            "flowVersion": result.flow_version,
            "funnel": counts,
            "durationMs": duration,
            "traceId": rec_id,
        }
        trace_doc = {
            **{k: v for k, v in (trace or {}).items() if k not in ("request_index", "customer_id")},
            "id": rec_id,
            "customerId": body.customerId,
            "requestId": job.request_id,
            "decisionFlowKey": result.flow_key,
            "flowVersion": result.flow_version,
            "funnel": counts,
            "result": {
                "count": len(decisions),
                "topOffer": ({"offerId": decisions[0]["offerId"], "score": decisions[0]["score"]}
                             if decisions else None),
            },
            "totalDurationMs": duration,
            "createdAt": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "controlGroup": arm.control_group,
            "experimentAssignment": assignment,
        }
    return response, log_rows, tuple(rec_rows), trace_doc
