"""Batch scoring: decide for a whole customer set with the realtime decision function.

    summary = run(store=store, tenant_id="demo", flow_key="starbucks-decision-pipeline",
                  as_of=as_of, out="runs/")

Customers are read in ``customer_id`` order, ``chunk_size`` at a time (from the tenant's
customer table, a Parquet file, or either filtered to a segment); each chunk's history
comes from the store in ONE query; ``engine.decide`` runs once per chunk through the pure
Arrow kernel ``score_chunk``; the rows go to ``<out>/<run_id>/part-NNNNN.parquet``
(columns ``customer_id, rank, offer_id, creative_id, channel_id, placement_id, score,
personalization, experiment_variant, run_id``), each written atomically and recorded in a
manifest, so a rerun of the same run id resumes after the last finished chunk. The next
chunk is read while the current ones are decided, on one worker thread per core; chunks
are written and recorded in order. ``summary.json`` sums the funnel per stage
and the offers chosen per category, with the duration and the rates.

A run is read-only with respect to the interaction log unless ``log_decisions`` is set:
then every decision is appended as a ``recommendation`` row (``recommendation_id``
``rec_<run_id>:<chunk>:<customer_id>``, context ``{"batchRunId": ...}``), one transaction
per chunk, never twice for the same chunk even when the run is interrupted and resumed.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from engine.catalog import Catalog
from engine.errors import ValidationError
from engine.experiments import ExperimentSpec, parse_experiment
from engine.flow import CompiledFlow, DecisionRequest
from engine.scoring.evidence import Evidence, compute_evidence
from engine.store import Store
from engine.store.batch_reads import (
    CustomerSource,
    count_customers,
    customer_pages,
    history_for_customers,
)
from pipelines._batch_kernel import (
    OUTPUT_SCHEMA,
    ChunkResult,
    batch_flow,
    decide_chunk,
    default_flow_key,
    history_frame,
    score_chunk,
)
from pipelines._batch_log import log_chunk
from pipelines._batch_manifest import (
    SUMMARY,
    ChunkRecord,
    Manifest,
    check_run_id,
    part_name,
    write_atomic,
    write_parquet_atomic,
)
from pipelines._batch_summary import RunSummary, build_summary, iso, summary_table

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "OUTPUT_SCHEMA",
    "RunSummary",
    "read_output",
    "run",
    "score_chunk",
    "score_command",
    "summary_table",
]

DEFAULT_CHUNK_SIZE = 100_000  # PERF-NOTES: 100k-customer chunks keep peak memory low
DEFAULT_OUT = Path("out/batch")  # git-ignored
MAX_WORKERS = 4  # chunks in flight at once (each holds its chunk's frames)
HISTORY_WINDOW = timedelta(days=90)  # what the serving layer keeps; caps unbounded lookbacks


def _utc(ts: datetime) -> datetime:
    if not isinstance(ts, datetime):
        raise ValidationError(f"as_of must be a datetime, got {ts!r}", field="asOf")
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _source(customers: str | Path | None, segment: str | None, column: str) -> CustomerSource:
    """None: the tenant's first customer table; a path: a Parquet file; else a schema name."""
    if customers is None:
        return CustomerSource(segment=segment, segment_column=column)
    text = str(customers)
    if isinstance(customers, Path) or "/" in text or "." in text:
        path = Path(customers)
        if path.suffix.lower() != ".parquet":
            raise ValidationError(
                f"customers {text!r}: pass a customer schema name or a .parquet file "
                "(load CSV files as a customer schema first)",
                field="customers",
            )
        return CustomerSource(parquet=path.resolve(), segment=segment, segment_column=column)
    return CustomerSource(schema=text, segment=segment, segment_column=column)


def _request_params(request: DecisionRequest) -> dict[str, Any]:
    return {
        "channel": request.channel,
        "channelId": request.channel_id,
        "placement": request.placement,
        "limit": request.limit,
        "attributes": dict(request.attributes),
        "segments": list(request.segments),
        "excludeOffers": list(request.exclude_offers),
        "excludeCreatives": list(request.exclude_creatives),
        "placements": [[p.placement_id, p.limit] for p in request.placements],
        "deduplicate": request.deduplicate,
    }


def _experiment(store: Store, tenant_id: str, experiment: Any) -> ExperimentSpec | None:
    if experiment is None or isinstance(experiment, ExperimentSpec):
        return experiment
    if isinstance(experiment, str):
        from pipelines.experiments import find_experiment

        return parse_experiment(find_experiment(store, tenant_id, experiment))
    return parse_experiment(experiment)


def _history_since(flow: CompiledFlow, as_of: datetime) -> datetime | None:
    """The oldest interaction any aggregate of the flow reads (None: the flow reads none)."""
    if not any(flow.aggs.values()):
        return None
    windows = [flow.lookback.get(level) for level, exprs in flow.aggs.items() if exprs]
    if any(w is None for w in windows):
        return as_of - HISTORY_WINDOW
    return max(as_of - timedelta(seconds=max(w for w in windows if w is not None)),
               as_of - HISTORY_WINDOW)


def _evidence(store: Store, tenant_id: str, catalog: Catalog, flow: CompiledFlow,
              as_of: datetime) -> Evidence | None:
    """Adaptive evidence of the whole population (flows that score by propensity only)."""
    if flow.propensity_k is None:
        return None
    log = history_for_customers(store, tenant_id, None, since=as_of - HISTORY_WINDOW,
                                until=as_of)
    return compute_evidence(catalog, history_frame(log), as_of=as_of)


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = "" if speed is None else f"{speed:,.0f} customers/s"
        return Text(text, style="progress.data.speed")


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


@dataclass(frozen=True)
class _Page:
    customers: pa.Table
    history: pa.Table | None
    read_s: float


def _pages(
    store: Store, tenant_id: str, source: CustomerSource, *, after: str | None, remaining: int,
    chunk_size: int, since: datetime | None, as_of: datetime, reads_history: bool,
) -> Iterator[_Page]:
    """Customer pages with their history, read one page ahead in a worker thread (DuckDB
    and Polars release the GIL: the next read overlaps the current decision)."""
    stream = customer_pages(store, tenant_id, source, after=after, page_size=chunk_size,
                            limit=remaining)

    def read() -> _Page | None:
        started = time.perf_counter()
        page = next(stream, None)
        if page is None:
            return None
        history = None
        if reads_history:
            history = history_for_customers(store, tenant_id, page.column("customer_id"),
                                            since=since, until=as_of)
        return _Page(page, history, time.perf_counter() - started)

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nextbest-batch") as pool:
            pending: Future[_Page | None] = pool.submit(read)
            while (page := pending.result()) is not None:
                pending = pool.submit(read)
                yield page
    finally:
        stream.close()


def run(
    *,
    store: Store,
    tenant_id: str,
    flow_key: str | None = None,
    customers: str | Path | None = None,
    segment: str | None = None,
    segment_column: str = "segments",
    as_of: datetime | None = None,
    limit: int | None = None,
    out: str | Path,
    run_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    log_decisions: bool = False,
    progress: bool = True,
    request: DecisionRequest | None = None,
    experiment: str | ExperimentSpec | dict[str, Any] | None = None,
    content: bool = False,
    workers: int | None = None,
) -> RunSummary:
    """Score a customer set in chunks; write ``<out>/<run_id>/part-*.parquet``, the
    manifest and ``summary.json``; return the summary.

    ``customers``: None (the tenant's first customer table), a customer schema name, or a
    Parquet file (``customer_id`` + attributes, or ids only). ``segment``: keep customers
    whose ``segment_column`` contains it. ``as_of``: the decision time (UTC); None means
    now for a new run and the recorded as-of when resuming. ``limit``: at most this many
    customers (the first ones in id order). ``run_id``: a new id when None; an existing
    run resumes after its last finished chunk (same parameters required). ``request``: the
    template request (channel, placement, limit of offers ...) every customer gets.
    ``experiment``: an experiment key (or document) whose arm fills ``experiment_variant``.
    ``content``: also render and write each decision's creative ``content``. ``workers``:
    chunks decided at once (default: one per core, at most ``MAX_WORKERS``; each holds one
    chunk in memory).
    """
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 8:
        raise ValidationError("workers must be an integer from 1 to 8", field="workers")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValidationError("chunk_size must be a positive integer", field="chunkSize")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 0):
        raise ValidationError("limit must be a non-negative integer", field="limit")
    request = request or DecisionRequest()
    if request.customer_id is not None:
        raise ValidationError("the batch request is a template: leave customer_id unset",
                              field="customerId")
    started = time.perf_counter()
    run_id = check_run_id(run_id or _new_run_id())
    directory = Path(out) / run_id
    catalog = store.load_catalog(tenant_id)
    flow_key = flow_key or default_flow_key(catalog)
    flow = batch_flow(catalog, flow_key, content=content)
    spec = _experiment(store, tenant_id, experiment)
    source = _source(customers, segment, segment_column)
    as_of = _utc(as_of) if as_of is not None else _recorded_as_of(directory)
    params = {
        "tenantId": tenant_id,
        "flowKey": flow_key,
        "flowVersion": flow.version,
        "catalogVersion": catalog.version,
        "asOf": iso(as_of),
        "customers": source.describe(),
        "limit": limit,
        "chunkSize": chunk_size,
        "request": _request_params(request),
        "experiment": None if spec is None else spec.key,
        "logDecisions": log_decisions,
        "content": content,
    }
    manifest = Manifest.open(directory, params)
    resumed = len(manifest.chunks)
    total = count_customers(store, tenant_id, source)
    if limit is not None:
        total = min(total, limit)
    remaining = max(total - manifest.customers, 0)
    since = _history_since(flow, as_of)
    evidence = _evidence(store, tenant_id, catalog, flow, as_of) if remaining else None
    customers_now = pairs_now = 0
    first = True

    def record(page: _Page, result: ChunkResult, started_at: float) -> None:
        """Write one decided chunk and record it (in chunk order, on this thread)."""
        nonlocal first, customers_now, pairs_now
        index = len(manifest.chunks)
        name = part_name(index)
        write_parquet_atomic(directory / name, result.frame)
        logged = 0
        if log_decisions:
            logged = log_chunk(store, tenant_id, catalog, result, run_id, index, as_of,
                               spec, check=first)
        ids = page.customers.column("customer_id")
        manifest.add(ChunkRecord(
            index=index, file=name, customers=page.customers.num_rows,
            rows=result.frame.height, first_customer=ids[0].as_py(),
            last_customer=ids[-1].as_py(), funnel=result.funnel,
            categories=result.categories, offers=result.offers,
            seconds=page.read_s + time.perf_counter() - started_at, logged=logged,
        ))
        first = False
        customers_now += page.customers.num_rows
        pairs_now += result.candidate_pairs
        bar.advance(task, page.customers.num_rows)

    def decide(page: _Page) -> ChunkResult:
        return decide_chunk(
            page.customers, page.history, catalog=catalog, flow=flow, request=request,
            as_of=as_of, evidence=evidence, experiment=spec, run_id=run_id, content=content,
        )

    with _progress(progress) as bar:
        task = bar.add_task(f"scoring {run_id}", total=total, completed=manifest.customers)
        pages = _pages(store, tenant_id, source, after=manifest.last_customer,
                       remaining=remaining, chunk_size=chunk_size, since=since, as_of=as_of,
                       reads_history=since is not None) if remaining else iter(())
        # chunks are decided on worker threads (Polars and numpy release the GIL), written
        # and recorded here in chunk order, so a resumed run never sees a gap
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nextbest-decide") as pool:
            pending: deque[tuple[_Page, float, Future[ChunkResult]]] = deque()
            for page in pages:
                pending.append((page, time.perf_counter(), pool.submit(decide, page)))
                if len(pending) >= workers:
                    done, started_at, future = pending.popleft()
                    record(done, future.result(), started_at)
            while pending:
                done, started_at, future = pending.popleft()
                record(done, future.result(), started_at)
    manifest.complete = True
    manifest.save()
    summary = build_summary(
        manifest, run_id=run_id, tenant_id=tenant_id, flow=flow, catalog=catalog, as_of=as_of,
        resumed=resumed, customers_now=customers_now, pairs_now=pairs_now,
        duration=time.perf_counter() - started, experiment=spec,
    )
    write_atomic(directory / SUMMARY, _json(summary.to_dict()))
    return summary


def _json(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def _new_run_id() -> str:
    return f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def _recorded_as_of(directory: Path) -> datetime:
    """The as-of a previous attempt recorded, else now (a new run)."""
    path = directory / "manifest.json"
    if path.exists():
        recorded = orjson.loads(path.read_bytes()).get("params", {}).get("asOf")
        if recorded:
            return datetime.fromisoformat(recorded.replace("Z", "+00:00"))
    return datetime.now(UTC)


def read_output(directory: str | Path) -> pl.DataFrame:
    """Every finished chunk of a run directory, in order (``OUTPUT_SCHEMA`` columns)."""
    directory = Path(directory)
    manifest = orjson.loads((directory / "manifest.json").read_bytes())
    files = [directory / c["file"] for c in manifest["chunks"]]
    if not files:
        frame = pl.from_arrow(OUTPUT_SCHEMA.empty_table())
        assert isinstance(frame, pl.DataFrame)
        return frame
    return pl.read_parquet(files)


def score_command(
    store: Store,
    tenant_id: str,
    *,
    flow: str | None = None,
    customers: str | None = None,
    segment: str | None = None,
    segment_column: str = "segments",
    as_of: str | None = None,
    limit: int | None = None,
    out: str | Path = DEFAULT_OUT,
    run_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    log_decisions: bool = False,
    channel: str | None = None,
    placement: str | None = None,
    offers: int = 5,
    experiment: str | None = None,
    content: bool = False,
    workers: int | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> RunSummary:
    """The body of ``nextbest batch score``: parse ``--as-of`` (ISO-8601, naive = UTC;
    omitted = now, or the recorded as-of when resuming), run, print the summary table."""
    from pipelines.metrics import parse_as_of

    summary = run(
        store=store, tenant_id=tenant_id, flow_key=flow, customers=customers, segment=segment,
        segment_column=segment_column, as_of=None if as_of is None else parse_as_of(as_of),
        limit=limit, out=out, run_id=run_id, chunk_size=chunk_size,
        log_decisions=log_decisions, progress=progress, experiment=experiment,
        request=DecisionRequest(channel=channel, placement=placement, limit=offers),
        content=content, workers=workers,
    )
    (console or Console()).print(summary_table(summary))
    return summary


