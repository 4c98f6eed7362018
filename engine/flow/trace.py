"""Decision traces (spec §16): one row per traced request.

Columns: ``request_index``, ``customer_id``, the funnel counts, and list-of-struct columns
``qualificationResults`` (offerId, creativeId, ruleId, ruleName, ruleType, stage, passed,
reason; rules up to the first hard failure), ``contactPolicyResults`` (the first blocking
policy of each removed candidate with its reason), ``scoringResults`` (score, method,
factors, eliminated) and ``selectedOffers``. Built from the same marked frame as the
decisions, only for requests with ``debug`` or when ``trace=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from engine.flow import columns as c
from engine.flow.nodes.contact_policy import TRACE_PREFIX as CP_PREFIX
from engine.flow.nodes.contact_policy import ContactPolicyNode
from engine.flow.nodes.qualify import TRACE_PREFIX as Q_PREFIX
from engine.flow.nodes.qualify import QualifyNode
from engine.flow.request import DEBUG, RequestFrames

ELIMINATED = c.ELIMINATED

FUNNEL_COLUMNS = ("candidateCount", "afterQualification", "afterContactPolicy", "finalCount")

if TYPE_CHECKING:
    from engine.flow.compiled import CompiledFlow

IDS = [pl.col(c.OFFER_ID).alias("offerId"), pl.col(c.CREATIVE_ID).alias("creativeId")]


def _listed(lf: pl.LazyFrame, name: str, sort: list[str], descending: list[bool]) -> pl.LazyFrame:
    """Collapse rows (``_req`` + fields) into one list-of-struct column per request."""
    fields = [x for x in lf.collect_schema().names() if x != c.REQ and not x.startswith("_")]
    return (
        lf.sort([c.REQ, *sort], descending=[False, *descending])
        .group_by(c.REQ, maintain_order=True)
        .agg(pl.struct(fields).alias(name))
    )


def _qualification(flow: CompiledFlow, marked: pl.LazyFrame) -> pl.LazyFrame | None:
    parts = []
    for node in flow.narrow:
        if not isinstance(node, QualifyNode) or not node.rules:
            continue
        col = f"{Q_PREFIX}{node.index}"
        parts.append(
            marked.select(c.REQ, *IDS, pl.col(col))
            .explode(col)
            .unnest(col)
            .filter(pl.col("shown"))
            .drop("shown")
            .with_columns(pl.lit(node.index).alias("_n"))
        )
    if not parts:
        return None
    rows = pl.concat(parts).unique(
        subset=[c.REQ, "offerId", "creativeId", "_n", "ruleId"], maintain_order=False
    )
    return _listed(rows, "qualificationResults", ["offerId", "creativeId", "_n", "_i"], [False] * 4)


def _policies(flow: CompiledFlow, marked: pl.LazyFrame) -> pl.LazyFrame | None:
    parts = []
    for node in flow.narrow:
        if not isinstance(node, ContactPolicyNode) or not node.policies:
            continue
        col = f"{CP_PREFIX}{node.index}"
        if col not in marked.collect_schema().names():
            continue
        parts.append(
            marked.filter(pl.col(col).is_not_null()).select(c.REQ, *IDS, pl.col(col)).unnest(col)
        )
    if not parts:
        return None
    rows = pl.concat(parts).unique(subset=[c.REQ, "offerId", "creativeId"])
    return _listed(rows, "contactPolicyResults", ["offerId", "creativeId"], [False, False])


def _scores(scored: pl.LazyFrame, method: str) -> pl.LazyFrame:
    rows = (
        scored.filter(pl.col(c.DROP).is_null())
        .select(
            c.REQ,
            *IDS,
            pl.col(c.SCORE).alias("score"),
            pl.lit(method).alias("method"),
            pl.col(c.MANDATORY).alias("mandatory"),
            pl.col(ELIMINATED).alias("eliminated"),
            pl.col(c.FACTORS).alias("factors"),
        )
        .unique(subset=[c.REQ, "offerId", "creativeId"])
    )
    return _listed(rows, "scoringResults", ["score", "offerId", "creativeId"], [True, False, False])


def trace_plan(
    flow: CompiledFlow,
    frames: RequestFrames,
    marked: pl.LazyFrame,
    decisions: pl.LazyFrame,
    counts: pl.LazyFrame,
    *,
    everyone: bool,
    method: str,
) -> pl.LazyFrame:
    requests = frames.requests.lazy()
    if not everyone:
        requests = requests.filter(pl.col(DEBUG))
    out = (
        requests.select(pl.col(c.REQ), pl.col(c.CUSTOMER_ID).alias("customer_id"))
        .join(counts, on=c.REQ, how="left")
        .with_columns(pl.col(n).fill_null(0).cast(pl.UInt32) for n in FUNNEL_COLUMNS)
    )
    selected = decisions.select(
        pl.col("request_index").alias(c.REQ),
        pl.col("slot"),
        pl.col("rank"),
        pl.col("offer_id").alias("offerId"),
        pl.col("creative_id").alias("creativeId"),
        pl.col("placement_id").alias("placementId"),
        pl.col("score"),
        pl.col("mandatory"),
    )
    parts = {
        "qualificationResults": _qualification(flow, marked),
        "contactPolicyResults": _policies(flow, marked),
        "scoringResults": _scores(marked, method),
        "selectedOffers": _listed(selected, "selectedOffers", ["slot", "rank"], [False, False]),
    }
    for name, part in parts.items():
        if part is None:
            out = out.with_columns(pl.lit(None).alias(name))
        else:
            out = out.join(part, on=c.REQ, how="left")
    return out.rename({c.REQ: "request_index"}).sort("request_index")
