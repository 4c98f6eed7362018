"""The chunk kernel of a batch run: Arrow in, Arrow out, no I/O, no clock.

``score_chunk(customers, history, catalog=, flow=, request=, as_of=)`` decides for every
customer row with ``engine.decide`` (the function the HTTP layer calls, so a batch row is
what ``POST /api/v1/recommend`` answers for the same state and as-of) and returns the
output rows. It touches no database, file or global state, so the same function can run
inside Ray Data ``map_batches`` or Spark ``mapInArrow`` unchanged; ``decide_chunk`` returns
the funnel and offer-mix counts beside the rows, for the run summary.

``rank`` is the position of a decision in the customer's answer (1, 2, ...), as in the
Recommend response; ``score`` is never null (0.0 as in the response) and
``personalization`` is a JSON object string (``{}`` when the flow computes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from engine.catalog import HISTORY_SCHEMA, Catalog
from engine.decide import decide
from engine.errors import NotFoundError, ValidationError
from engine.experiments import ExperimentSpec, assign_frame
from engine.flow import CompiledFlow, DecisionRequest, compile_flow, runnable_config
from engine.flow.compiled import build_compiled
from engine.flow.plan import FUNNEL_COLUMNS
from engine.scoring.evidence import Evidence

_STR = pa.large_string()  # what Polars hands to Arrow: no copy on the way out
OUTPUT_SCHEMA = pa.schema(
    [
        ("customer_id", _STR),
        ("rank", pa.int32()),
        ("offer_id", _STR),
        ("creative_id", _STR),
        ("channel_id", _STR),
        ("placement_id", _STR),
        ("score", pa.float64()),
        ("personalization", _STR),
        ("experiment_variant", _STR),
        ("run_id", _STR),
    ]
)
CONTENT_FIELD = pa.field("content", _STR)


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's output rows (``frame``, Polars; ``table``, Arrow in ``OUTPUT_SCHEMA``)
    plus what the run summary adds up."""

    frame: pl.DataFrame
    content: bool
    customers: int
    funnel: dict[str, int]
    categories: dict[str, int]
    offers: dict[str, int] = field(default_factory=dict)

    @property
    def table(self) -> pa.Table:
        return self.frame.to_arrow().cast(output_schema(self.content))

    @property
    def candidate_pairs(self) -> int:
        """Customer x offer pairs that entered the funnel (``candidateCount``)."""
        return self.funnel.get("candidateCount", 0)


def output_schema(content: bool) -> pa.Schema:
    return OUTPUT_SCHEMA.insert(8, CONTENT_FIELD) if content else OUTPUT_SCHEMA


def default_flow_key(catalog: Catalog) -> str:
    """The flow a batch runs when none is named: the runnable default flow (``isDefault``),
    else the most recently updated runnable flow (the order Recommend falls back on)."""
    runnable = []
    for doc in catalog.decision_flows:
        try:
            runnable_config(doc)
        except NotFoundError:
            continue
        runnable.append(doc)
    default = next((f for f in runnable if f.get("isDefault")), None)
    if default is None and runnable:
        default = max(runnable, key=lambda f: (f.get("updatedAt") or "", f["id"]))
    if default is None:
        raise NotFoundError(
            f"tenant {catalog.tenant_id!r} has no runnable decision flow; publish one or "
            "pass a flow key",
            field="flow",
        )
    return str(default["key"])


def batch_flow(catalog: Catalog, flow_key: str, *, content: bool = False) -> CompiledFlow:
    """The flow's latest published version, compiled for a batch run.

    Without ``content`` the ``response`` node is left out: it only renders each decision's
    creative content (phase 3, after ranking), which a batch run does not write, and it is
    a quarter of the per-customer cost. Ranking, scores and personalization are unchanged.
    """
    doc = catalog.flow_by_key(flow_key)
    if doc is None:
        known = ", ".join(sorted(f["key"] for f in catalog.decision_flows)) or "none"
        raise NotFoundError(f"decision flow {flow_key!r} not found (known: {known})",
                            field="flow")
    if content:
        return compile_flow(catalog, doc)
    version, config = runnable_config(doc)
    nodes = [n for n in config["nodes"] if n["type"] != "response"]
    return build_compiled(catalog, {**config, "nodes": nodes}, key=flow_key, version=version)


def _customers(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    if "customer_id" not in frame.columns:
        raise ValidationError("the customers table needs a customer_id column",
                              field="customers")
    return frame


def history_frame(table: pa.Table | None) -> pl.DataFrame:
    """History rows (``HISTORY_SCHEMA`` columns; naive timestamps are UTC) as a frame."""
    if table is None or table.num_rows == 0:
        return pl.DataFrame(schema=HISTORY_SCHEMA)
    frame = pl.from_arrow(table.select(list(HISTORY_SCHEMA)))
    assert isinstance(frame, pl.DataFrame)
    ts = frame.schema["ts"]
    if isinstance(ts, pl.Datetime) and ts.time_zone is None:
        frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    return frame.cast(HISTORY_SCHEMA)  # type: ignore[arg-type]


def _positions(request_index: pl.Series) -> pl.Series:
    """1, 2, ... within each request (rows come ordered by request, slot and rank): the
    ``rank`` the Recommend response numbers its decisions with."""
    idx = request_index.to_numpy()
    n = idx.shape[0]
    if n == 0:
        return pl.Series("rank", [], dtype=pl.Int32)
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    lengths = np.diff(np.r_[starts, n])
    rank = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths) + 1
    return pl.Series("rank", rank.astype(np.int32))


def decide_chunk(
    customers: pa.Table,
    history: pa.Table | None,
    *,
    catalog: Catalog,
    flow: CompiledFlow | str | Mapping[str, Any],
    request: DecisionRequest | None = None,
    as_of: datetime,
    evidence: Evidence | None = None,
    experiment: ExperimentSpec | None = None,
    run_id: str | None = None,
    content: bool = False,
) -> ChunkResult:
    """Decide for every customer row of the chunk; rows plus funnel and offer-mix counts."""
    request = request or DecisionRequest()
    if request.customer_id is not None:
        raise ValidationError("a batch request is a template: leave customer_id unset",
                              field="customerId")
    frame = _customers(customers)
    result = decide(
        catalog, frame, history_frame(history), request, as_of=as_of, flow=flow,
        evidence=evidence, chunk_size=max(frame.height, 1),
    )
    decisions = result.decisions
    funnel = result.funnel
    variant: pl.Expr = pl.lit(None, dtype=pl.String)
    if experiment is not None and funnel.height:
        # funnel row i is request i (one decide call): gather each decision's arm
        arms = assign_frame(funnel.get_column("customer_id"), experiment).get_column("variant")
        variant = pl.lit(arms).gather(pl.col("request_index"))
    columns = [
        pl.col("customer_id"),
        _positions(decisions.get_column("request_index")),
        pl.col("offer_id"),
        pl.col("creative_id"),
        pl.col("channel_id"),
        pl.col("placement_id"),
        pl.col("score").fill_null(0.0),
        pl.col("personalization").fill_null("{}"),
        *([pl.col("content").fill_null("{}")] if content else []),
        variant.alias("experiment_variant"),
        pl.lit(run_id, dtype=pl.String).alias("run_id"),
    ]
    out = decisions.select(columns)
    totals = funnel.select(pl.col(list(FUNNEL_COLUMNS)).cast(pl.Int64).sum())
    offers = {str(k): int(n) for k, n in decisions.group_by("offer_id").len().iter_rows()}
    category_of = dict(catalog.offers.select("offer.id", "offer.category").iter_rows())
    categories: dict[str, int] = {}
    for offer_id, n in offers.items():  # an offer's rows all carry its category
        name = str(category_of.get(offer_id))
        categories[name] = categories.get(name, 0) + n
    return ChunkResult(
        frame=out,
        content=content,
        customers=funnel.height,
        funnel={k: int(v or 0) for k, v in totals.row(0, named=True).items()},
        categories=categories,
        offers=offers,
    )


def score_chunk(
    customers: pa.Table,
    history: pa.Table | None,
    *,
    catalog: Catalog,
    flow: CompiledFlow | str | Mapping[str, Any],
    request: DecisionRequest | None = None,
    as_of: datetime,
    evidence: Evidence | None = None,
    experiment: ExperimentSpec | None = None,
    run_id: str | None = None,
) -> pa.Table:
    """Arrow in, Arrow out: the decisions of the chunk's customers (``OUTPUT_SCHEMA``).

    ``customers``: ``customer_id`` + ``customer.<attr>`` columns; ``history``: those
    customers' interactions (``HISTORY_SCHEMA`` columns). Pure: hand it to Ray Data
    ``map_batches`` or Spark ``mapInArrow`` with the catalog, flow and as-of bound.
    """
    return decide_chunk(
        customers, history, catalog=catalog, flow=flow, request=request, as_of=as_of,
        evidence=evidence, experiment=experiment, run_id=run_id,
    ).table
