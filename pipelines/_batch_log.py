"""Logging a batch run's decisions: ``recommendation`` rows in the interaction log.

One transaction per chunk. ``recommendation_id`` is ``rec_<run_id>:<chunk>:<customer_id>``
(deterministic, so a rerun can tell whether a killed attempt already logged a chunk); the
interaction ids are time-ordered ``ix_<12 hex ms><8 hex>`` like every other log row; ``ts``
is the run's as-of; ``context`` names the run and the chunk.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime

import polars as pl

from engine.catalog import Catalog
from engine.experiments import ExperimentSpec
from engine.store import Store
from engine.store.batch_reads import count_logged
from pipelines._batch_kernel import ChunkResult


def _log_rows(
    frame: pl.DataFrame, catalog: Catalog, run_id: str, index: int, as_of: datetime,
    experiment: ExperimentSpec | None,
) -> pl.DataFrame:
    categories = dict(catalog.offers.select("offer.id", "offer.categoryId").iter_rows())
    stamp = f"ix_{int(time.time() * 1000):012x}"
    base = secrets.randbits(32)
    context = f'{{"batchRunId":"{run_id}","chunk":{index}}}'
    return frame.select(
        _ids(stamp, base),
        "customer_id", "offer_id", "creative_id", "channel_id", "placement_id",
        pl.col("offer_id").replace_strict(categories, default=None, return_dtype=pl.String)
        .alias("category_id"),
        pl.format("rec_{}:{}:{}", pl.lit(run_id), pl.lit(f"{index:05d}"), pl.col("customer_id"))
        .alias("recommendation_id"),
        "rank",
        pl.lit("recommendation").alias("outcome"),
        pl.lit("outbound").alias("direction"),
        pl.lit(as_of.replace(tzinfo=None), dtype=pl.Datetime("us")).alias("ts"),
        pl.lit(context).alias("context"),
        pl.lit(None if experiment is None else experiment.key, dtype=pl.String)
        .alias("experiment_key"),
        pl.col("experiment_variant").alias("variant"),
    )


def _ids(stamp: str, base: int) -> pl.Expr:
    """Time-ordered interaction ids ``ix_<12 hex ms><8 hex>`` (unique within the chunk)."""
    low = (pl.int_range(pl.len(), dtype=pl.Int64) + base) % (1 << 32)
    hexed = pl.concat_str(
        [((low // (16 ** (7 - i))) % 16).replace_strict(
            list(range(16)), list("0123456789abcdef"), return_dtype=pl.String)
         for i in range(8)]
    )
    return pl.concat_str(pl.lit(stamp), hexed).alias("id")


def log_chunk(
    store: Store, tenant_id: str, catalog: Catalog, result: ChunkResult, run_id: str,
    index: int, as_of: datetime, spec: ExperimentSpec | None, *, check: bool,
) -> int:
    """Append the chunk's decisions as recommendation rows (one transaction). The first
    chunk of an attempt may have been logged by a killed attempt: then it is not again."""
    if result.frame.height == 0:
        return 0
    if check and count_logged(store, tenant_id, f"rec_{run_id}:{index:05d}:"):
        return result.frame.height
    rows = _log_rows(result.frame, catalog, run_id, index, as_of, spec)
    return store.interactions.append(tenant_id, rows)
