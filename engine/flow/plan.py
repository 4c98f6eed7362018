"""One lazy plan per call: requests -> candidates -> marks -> score -> rank -> output.

The candidate frame is long: one row per (request, slot, offer, creative).

1. request frame (K rows: ``_req``, ``customer_id``, ``request.*``, ``attributes.*``) with the
   customers' ``customer.*`` columns (hstacked when aligned, else a left join) and the
   customer-level history aggregates joined K times, not K x candidates times;
2. x slots (one per requested placement; 1 in single-placement mode);
3. x the matched (offer, creative) rows: when all requests share one match key (one
   customer, or a batch template) a cached table of matched rows with each offer's best
   creative (``matched.py``); otherwise the static table filtered by channel / placement /
   exclusions / schedule;
4. phase-1 nodes mark rows (``_drop`` = node index) instead of dropping them, so funnel counts
   and traces read the same frame; then score, and rank flags (``_rank``, ``_sel``) from
   window functions over integer keys;
5. the selected rows (<= 50 per request) get computed fields and content.

Small calls (realtime) minimise operators, whose fixed cost dominates (~0.1-0.25 ms each on
a 2-core box): one output frame holding the few candidate rows and their flags; order,
funnel counts and content assembly are numpy / Python on those rows after the collect
(``small.py``).
Large calls (batch) match creatives once per distinct request signature, carry only the
columns ranking reads, join wide output columns back onto the final rows ("late
materialization") and render content vectorized; decisions and funnel counts are two
plans over a shared sub-plan, evaluated by one ``pl.collect_all``. A batch template, whose
requests all get the same matched rows, is a K x M matrix: it is ranked with numpy between
two collects (``dense.py``). All shapes give identical results (tests pin this).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import polars as pl

from engine.flow import columns as c
from engine.flow import dense
from engine.flow.compiled import CompiledFlow
from engine.flow.history import CAT, LEVEL_KEYS, prepare_history
from engine.flow.nodes.base import Call
from engine.flow.nodes.compute import PERSONALIZATION, ComputeNode
from engine.flow.nodes.rank import CATEGORY_INDEX, MAX_OFFERS, best_creative
from engine.flow.nodes.response import CONTENT, ResponseNode
from engine.flow.request import RequestFrames
from engine.flow.small import FUNNEL_COLUMNS, Counts, finish, finish_one_pass
from engine.flow.trace import trace_plan
from engine.scoring.evidence import Evidence

_EMPTY_LIST = pl.lit([], dtype=pl.List(pl.String()))
DIRECT_ROWS = 50_000  # candidate rows up to which requests x table is joined directly
SIG, EXCL_KEY, TROW = "_sig", "_excl_key", c.TROW
VARIABLE_PREFIXES = ("customer.", "attributes.", "metrics.", "request.", "_segments")

DECISION_SCHEMA: dict[str, pl.DataType] = {
    "request_index": pl.UInt32(),
    "customer_id": pl.String(),
    "slot": pl.UInt32(),
    "slot_placement": pl.String(),
    "rank": pl.Int32(),
    "offer_id": pl.String(),
    "offer_name": pl.String(),
    "category_name": pl.String(),
    "creative_id": pl.String(),
    "channel_id": pl.String(),
    "placement_id": pl.String(),
    "score": pl.Float64(),
    "mandatory": pl.Boolean(),
    "personalization": pl.String(),
    "content": pl.String(),
}


@dataclass(frozen=True)
class Plans:
    decisions: pl.LazyFrame
    counts: pl.LazyFrame | None  # funnel counts by _req (None: computed by ``finish``)
    trace: pl.LazyFrame | None
    # after the collect: (decisions, counts when the plan left them to numpy)
    finish: Callable[[pl.DataFrame], tuple[pl.DataFrame, Counts | None]] | None = None
    optimizations: pl.QueryOptFlags | None = None
    # dense calls run in two collects with numpy ranking between (``dense.py``): given the
    # Polars engine, returns (decisions, counts); the lazy frames above are then unused
    execute: Callable[[str], tuple[pl.DataFrame, Counts]] | None = None


def _segments(schema: dict[str, pl.DataType]) -> pl.Expr:
    parts = [pl.col(c.R_SEGMENTS).fill_null(_EMPTY_LIST) if c.R_SEGMENTS in schema else _EMPTY_LIST]
    for name in ("customer.segment", "customer.segments"):
        dtype = schema.get(name)
        if isinstance(dtype, pl.List):
            parts.append(pl.col(name).cast(pl.List(pl.String)).fill_null(_EMPTY_LIST))
        elif dtype is not None and dtype != pl.Null:
            parts.append(pl.col(name).cast(pl.String))
    if len(parts) == 1:
        return parts[0].alias(c.SEGMENTS)
    return pl.concat_list(parts).list.drop_nulls().alias(c.SEGMENTS)


def schema_key(schema: dict[str, pl.DataType]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in schema.items() if k.startswith(VARIABLE_PREFIXES)))


def _aligned(requests: pl.DataFrame, customers: pl.DataFrame) -> bool:
    """Customers rows already in request order (batch template, or the HTTP layer)."""
    if customers.height != requests.height:
        return False
    ids, req_ids = customers.get_column(c.CUSTOMER_ID), requests.get_column(c.CUSTOMER_ID)
    if ids.len() <= 1000:  # no query (and GIL hand-over) for a few ids
        return ids.to_list() == req_ids.to_list()
    return ids.equals(req_ids)


def _join_level(
    lf: pl.LazyFrame,
    history: pl.LazyFrame,
    flow: CompiledFlow,
    level: str,
    requests: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Aggregate the history once per level and join it. With ``requests`` (large calls),
    offer and category aggregates join on integer keys (request index, offer order or
    category index) rather than on two strings: the join runs over every candidate row."""
    hkeys, ckeys = LEVEL_KEYS[level]
    if requests is None or level == "customer":
        table = history.group_by(hkeys).agg(flow.aggs[level])
        return lf.join(table, left_on=ckeys, right_on=hkeys, how="left")
    if level == "offer":
        column, mapping, key = "offer_id", flow.offer_orders, c.OFFER_ORDER
    else:
        column, mapping, key = CAT, flow.category_indexes, CATEGORY_INDEX
    keyed = history.join(requests.select(c.CUSTOMER_ID, c.REQ), on=c.CUSTOMER_ID).with_columns(
        pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.Int64).alias(key)
    )
    table = keyed.group_by(c.REQ, key).agg(flow.aggs[level])
    return lf.join(table, on=[c.REQ, key], how="left")


def _requests(
    flow: CompiledFlow, frames: RequestFrames, customers: pl.DataFrame | None
) -> tuple[pl.LazyFrame, dict[str, pl.DataType]]:
    """Requests with customer attributes (enrich) and ``_segments``; K rows."""
    requests = frames.requests
    schema: dict[str, pl.DataType] = dict(requests.schema)
    lf: pl.LazyFrame
    if flow.enrich and customers is not None and customers.width > 1:
        schema.update(customers.schema)
        if _aligned(requests, customers):
            extra = [s for s in customers.get_columns() if s.name != c.CUSTOMER_ID]
            lf = requests.hstack(extra).lazy()
        else:
            lf = requests.lazy().join(customers.lazy(), on=c.CUSTOMER_ID, how="left")
    else:
        lf = requests.lazy()
    if flow.uses_segments:
        lf = lf.with_columns(_segments(schema))
        schema[c.SEGMENTS] = pl.List(pl.String())
    return lf, schema


def _with_slots(lf: pl.LazyFrame, frames: RequestFrames) -> pl.LazyFrame:
    if frames.slots is None:
        return lf
    if c.REQ in frames.slots.columns:
        return lf.join(frames.slots.lazy(), on=c.REQ, how="inner")
    return lf.join(frames.slots.lazy(), how="cross")


def _matched_direct(
    flow: CompiledFlow, lf: pl.LazyFrame, table: pl.LazyFrame, call: Call, multi_slot: bool
) -> pl.LazyFrame:
    """Small calls: requests x table, filtered (fewest operators)."""
    cand = lf.join(table, how="cross")
    preds = [flow.inventory.predicate(call), flow.match.predicate(call)]
    preds = [p for p in preds if p is not None]
    if preds:
        cand = cand.filter(pl.all_horizontal(preds))
    if flow.early_best:
        cand = cand.filter(best_creative(None, multi_slot))
    return cand


def _signature(call: Call) -> list[str]:
    sig = [c.R_CHANNEL, c.R_CHANNEL_ID, c.SLOT_PLACEMENT]
    return [*sig, EXCL_KEY] if c.R_EXCLUDE_CREATIVES in call.schema else sig


def _with_signature(lf: pl.LazyFrame, call: Call) -> pl.LazyFrame:
    if c.R_EXCLUDE_CREATIVES not in call.schema:
        return lf
    key = pl.col(c.R_EXCLUDE_CREATIVES).list.sort().list.join("\x1f").alias(EXCL_KEY)
    return lf.with_columns(key)


def _matched_by_signature(
    flow: CompiledFlow, requests: pl.LazyFrame, lf: pl.LazyFrame, table: pl.LazyFrame, call: Call
) -> pl.LazyFrame:
    """Large calls: creative matching depends on the request's match signature (channel,
    channel id, placement, excluded creatives), not on the customer. Match and pick the best
    creatives once per distinct signature (a batch has one), then join the requests to them:
    the candidate frame never holds the creatives that lose."""
    sig = _signature(call)
    keep = [*sig, c.R_EXCLUDE_CREATIVES] if EXCL_KEY in sig else sig
    sigs = requests.select(keep).unique(subset=sig).with_row_index(SIG)
    matched = sigs.join(table, how="cross").filter(flow.match.predicate(call))
    schedule = flow.inventory.predicate(call, request_level=False)
    if schedule is not None:
        matched = matched.filter(schedule)
    if flow.early_best:
        pref = pl.col(c.CREATIVE_PREF)
        group = pl.col(SIG).cast(pl.Int64) * MAX_OFFERS + pl.col(c.OFFER_ORDER)
        matched = matched.filter(pref == pref.min().over(group))
    matched = matched.drop(SIG, *([c.R_EXCLUDE_CREATIVES] if EXCL_KEY in sig else []))
    cand = lf.join(matched, on=sig, how="inner", nulls_equal=True)
    excluded = flow.inventory.predicate(call, schedule=False)
    return cand.filter(excluded) if excluded is not None else cand


KEYS = {
    c.REQ,
    c.CUSTOMER_ID,
    c.SLOT,
    c.SLOT_PLACEMENT,
    c.SLOT_LIMIT,
    c.DEDUPE,
    TROW,
    c.OFFER_ID,
    c.OFFER_ORDER,
    c.CREATIVE_ID,
    c.CREATIVE_PREF,
    c.CATEGORY_ID,
    CATEGORY_INDEX,
    c.MANDATORY,
    c.DROP,
    c.DROP_BY,
    c.REASON,
    c.FIT,
    c.PROPENSITY,
    c.SEGMENTS,
    c.R_CHANNEL,
    c.R_CHANNEL_ID,
    c.R_EXCLUDE_CREATIVES,
    c.R_EXCLUDE_OFFERS,
    c.R_LIMIT,
    "_debug",
}


def _early_columns(flow: CompiledFlow, call: Call, multi_slot: bool) -> set[str]:
    """Columns the narrowing, scoring and ranking read (the rest can join in late)."""
    exprs: list[pl.Expr] = []
    for pred in (flow.inventory.predicate(call), flow.match.predicate(call)):
        if pred is not None:
            exprs.append(pred)
    for node in (*flow.narrow, flow.score_node):
        exprs.extend(node.expressions(call))
    for step in flow.rank_node.flag_steps(multi_slot, flow.early_best):
        exprs.extend(step)
    names = set(KEYS)
    for e in exprs:
        names.update(e.meta.root_names())
    return names


def _split(
    lf: pl.LazyFrame, columns: list[str], early: set[str], key: str
) -> tuple[pl.LazyFrame, pl.LazyFrame | None]:
    late = [x for x in columns if x not in early and x != key]
    if not late:
        return lf, None
    return lf.select([x for x in columns if x not in late]), lf.select([key, *late])


def _counts(flow: CompiledFlow, cand: pl.LazyFrame, multi_slot: bool, dedupe: bool) -> list:
    dropped = pl.col(c.DROP)
    conditions = [
        dropped.is_null() | (dropped >= 0),
        dropped.is_null() | (dropped > flow.last_qualify),
        dropped.is_null(),
    ]
    if not dedupe:
        conditions.append(pl.col(c.SELECTED))
    names = FUNNEL_COLUMNS[: len(conditions)]
    if flow.early_best and not multi_slot:  # one row per offer: count rows
        return [cond.sum().alias(n) for cond, n in zip(conditions, names, strict=True)]
    offer = pl.col(c.OFFER_ORDER)
    return [
        offer.filter(cond).n_unique().alias(n) for cond, n in zip(conditions, names, strict=True)
    ]


def build_plans(
    flow: CompiledFlow,
    frames: RequestFrames,
    customers: pl.DataFrame | None,
    history: pl.DataFrame | pl.LazyFrame | None,
    evidence: Evidence | None,
    as_of: datetime,
    trace: bool,
) -> Plans:
    requests, req_schema = _requests(flow, frames, customers)
    requests_full = requests
    static = flow.static_for(evidence)
    table_df = static.table
    schema = {**req_schema, **(frames.slots.schema if frames.slots is not None else {})}
    schema.update(static.schema)
    multi_slot = frames.slots is not None
    large = frames.requests.height * frames.max_slots * table_df.height > DIRECT_ROWS
    call = Call(
        as_of=as_of,
        evidence=evidence,
        schema=schema,
        schema_key=schema_key(schema),
        trace=trace or frames.debug_any,
        large=large,
    )
    table = table_df.lazy()
    table_late = requests_late = None
    early: set[str] = set()
    if large:
        early = _early_columns(flow, call, multi_slot)
        table, table_late = _split(table, table_df.columns, early, TROW)
        requests, requests_late = _split(requests, list(req_schema), early, c.REQ)
        if frames.match_key is None:
            requests = _with_signature(requests, call)

    lf = requests
    # rows older than the longest window any aggregate reads never count: a day of a 90-day
    # log, typically
    hist = (
        prepare_history(history, as_of, flow.category, flow.history_lookback) if flow.aggs else None
    )
    if hist is not None and "customer" in flow.aggs:  # joined K times, before the cross join
        lf = _join_level(lf, hist, flow, "customer")
    lf = _with_slots(lf, frames)
    matched = None
    if frames.match_key is not None:  # one key for the whole call: cached matched rows
        matched = static.matched.get(flow, table_df, frames.match_key, as_of)
        if large:
            matched_lf, table_late = _split(matched.lazy(), matched.columns, early, TROW)
        else:
            matched_lf = matched.lazy()
        cand = lf.join(matched_lf, how="cross")
    elif large:
        cand = _matched_by_signature(flow, _with_slots(requests, frames), lf, table, call)
    elif frames.match_groups is not None:  # a few keys: each request joins its key's rows
        union = static.matched.union(flow, table_df, frames.match_groups, as_of)
        cand = lf.join(union.lazy(), on=c.MATCH_GROUP)
    else:
        cand = _matched_direct(flow, lf, table, call, multi_slot)
    for level in ("offer", "category"):
        if hist is not None and level in flow.aggs:
            cand = _join_level(cand, hist, flow, level, requests if large else None)
    if not flow.early_best:
        superseded = flow.match.superseded(multi_slot)
        if superseded is not None:
            cand = cand.with_columns(superseded)
    for node in (*flow.narrow, flow.score_node):
        cand = node.apply(cand, call)

    rank = flow.rank_node
    dedupe = (
        flow.dedupe_override is not False
        and (flow.dedupe_override is True or frames.any_dedupe)
        and frames.max_slots > 1
    )
    if large and matched is not None and not multi_slot and not call.trace and dense.fits(matched):
        return Plans(cand, None, None, execute=partial(_dense, flow, frames, requests_full, cand,
                                                       matched, call))
    if dedupe:
        if flow.dedupe_override is True:
            cand = cand.with_columns(pl.lit(True).alias(c.DEDUPE))
        picked = rank.deduplicated(cand, frames.max_slots, flow.early_best)
    else:
        single = frames.requests.height == 1 and not multi_slot
        cand = rank.flags(cand, multi_slot=multi_slot, best_done=flow.early_best, single=single)
        picked = cand.filter(pl.col(c.SELECTED))
    # small calls without trace: one output, the whole (small) candidate frame with its flags;
    # selection, order and funnel counts are then numpy on a few rows (no filter, sort,
    # group-by or shared-cache operators, whose fixed cost dominates at this size)
    one_pass = not large and not dedupe and not call.trace
    if one_pass:
        picked = cand
    if table_late is not None:
        picked = picked.join(table_late, on=TROW, how="left")
    if requests_late is not None:
        picked = picked.join(requests_late, on=c.REQ, how="left")
    # few final rows (realtime): content is assembled in Python after the collect
    response = next((n for n in flow.phase3 if isinstance(n, ResponseNode)), None)
    render_late = response is not None and not large and bool(response.value_columns)
    values = response.value_columns if render_late and response is not None else []
    flags = [c.DROP, c.SELECTED, c.OFFER_ORDER] if one_pass else []
    decisions = _phase3(flow, picked, call, render_late, [*values, *flags])
    if large:
        decisions = decisions.sort("request_index", "slot", "rank")
    # small calls: planning dominates, and sub-expression elimination costs more than it saves
    optimizations = None if large else pl.QueryOptFlags(comm_subexpr_elim=False)
    if one_pass:
        # one output over a few rows, no shared sub-plans: every optimizer pass costs more
        # than it saves (K = 1, Starbucks: ~0.8 ms of ~3.3 ms per collect)
        optimizations = pl.QueryOptFlags.none()
        after = partial(
            finish_one_pass,
            response if render_late else None,
            flow.last_qualify,
            flow.early_best and not multi_slot,
        )
        return Plans(decisions, None, None, after, optimizations)

    counts = cand.group_by(c.REQ).agg(_counts(flow, cand, multi_slot, dedupe))
    if dedupe:
        finals = decisions.group_by(pl.col("request_index").alias(c.REQ)).agg(
            pl.col("offer_id").n_unique().alias("finalCount")
        )
        counts = counts.join(finals, on=c.REQ, how="left")
    trace_lf = None
    if call.trace:
        trace_lf = trace_plan(
            flow,
            frames,
            cand,
            decisions,
            counts,
            everyone=trace,
            method=flow.score_node.config.method,
        )
    after = None if large else partial(finish, response if render_late else None)
    return Plans(decisions, counts, trace_lf, after, optimizations)


def _phase3_inputs(flow: CompiledFlow, call: Call) -> set[str]:
    """Columns phase 3 and the decision columns read."""
    columns = (*_decision_columns(True, True), *_decision_columns(False, False))
    names = {n for e in columns for n in e.meta.root_names()}
    for node in flow.phase3:
        if isinstance(node, ComputeNode | ResponseNode):
            names |= node.inputs(call)
        if isinstance(node, ComputeNode):
            call = dataclasses.replace(call, schema={**call.schema, **node.dtypes(call)})
    return names


def _phase3(
    flow: CompiledFlow, picked: pl.LazyFrame, call: Call, render_late: bool, extra: list[str]
) -> pl.LazyFrame:
    """Computed fields and content of the final rows, then the decision columns (+ extra)."""
    for node in flow.phase3:
        if isinstance(node, ResponseNode):
            picked = node.apply(picked, call, render=not render_late)
        else:
            picked = node.apply(picked, call)
        if isinstance(node, ComputeNode):  # later nodes see the personalization types
            call = dataclasses.replace(call, schema={**call.schema, **node.dtypes(call)})
    has_compute = any(isinstance(n, ComputeNode) for n in flow.phase3)
    has_response = any(isinstance(n, ResponseNode) for n in flow.phase3)
    columns = _decision_columns(has_compute, has_response and not render_late)
    return picked.select(*columns, *extra)


def _dense(
    flow: CompiledFlow,
    frames: RequestFrames,
    requests: pl.LazyFrame,
    cand: pl.LazyFrame,
    matched: pl.DataFrame,
    call: Call,
    engine: str,
) -> tuple[pl.DataFrame, Counts]:
    """A dense call (see ``dense.py``): scoring columns and request rows in one collect,
    numpy ranking and counts, then phase 3 over the gathered selected rows."""
    rank = flow.rank_node
    scored, request_rows = pl.collect_all(
        [cand.select(dense.columns(rank)), requests], engine=engine  # type: ignore[arg-type]
    )
    req = frames.requests.get_column(c.REQ).to_numpy()
    trows = matched.get_column(TROW).to_numpy()
    mx = dense.matrix(scored, frames.requests.height, int(req[0]), trows, rank)
    limit = frames.requests.get_column(c.SLOT_LIMIT).to_numpy()
    ranked = dense.flags(mx, limit, rank)
    counts = dense.counts(mx, ranked, flow.last_qualify, req)
    picked = dense.picked(request_rows, matched, mx, ranked, _phase3_inputs(flow, call))
    decisions = _phase3(flow, picked.lazy(), call, False, []).collect(
        engine=engine  # type: ignore[arg-type]
    )
    return decisions, counts


@functools.cache
def _decision_columns(personalization: bool, content: bool) -> tuple[pl.Expr, ...]:
    return (
        pl.col(c.REQ).alias("request_index"),
        pl.col(c.CUSTOMER_ID).alias("customer_id"),
        pl.col(c.SLOT).alias("slot"),
        pl.col(c.SLOT_PLACEMENT).alias("slot_placement"),
        pl.col(c.RANK).alias("rank"),
        pl.col(c.OFFER_ID).alias("offer_id"),
        pl.col("offer.name").alias("offer_name"),
        pl.col("offer.category").alias("category_name"),
        pl.col(c.CREATIVE_ID).alias("creative_id"),
        pl.col(c.CHANNEL_ID).alias("channel_id"),
        pl.col(c.PLACEMENT_ID).alias("placement_id"),
        pl.col(c.SCORE).alias("score"),
        pl.col(c.MANDATORY).alias("mandatory"),
        (pl.col(PERSONALIZATION) if personalization else pl.lit("{}")).alias("personalization"),
        (pl.col(CONTENT) if content else pl.col("creative.content")).alias("content"),
    )
