"""Behavioural metrics (spec §14.1) and interaction summaries (§14.2–14.3) from the log.

One implementation for batch and realtime: a metric definition compiles to Polars
expressions (``compile``), ``compute_metrics`` turns a history frame into long values
(``metric, customer_id, group_key, value``), and ``metrics_wide`` /
``metrics_for_candidates`` expose them to the decision engine as ``metrics.<name>`` columns.
"""

from engine.metrics.compile import (
    CONVERSION_OUTCOMES,
    DIMENSIONS,
    FILTER_FIELDS,
    SUMMARY_COUNTERS,
    CompiledMetric,
    compile_metric,
    compile_metrics,
    source_predicate,
)
from engine.metrics.compute import (
    LONG_SCHEMA,
    compute_metrics,
    empty_long,
    metrics_plan,
    realtime_values,
)
from engine.metrics.summaries import daily_buckets, summaries, summaries_frame, window_totals
from engine.metrics.wide import metrics_for_candidates, metrics_wide

__all__ = [
    "CONVERSION_OUTCOMES",
    "DIMENSIONS",
    "FILTER_FIELDS",
    "LONG_SCHEMA",
    "SUMMARY_COUNTERS",
    "CompiledMetric",
    "compile_metric",
    "compile_metrics",
    "compute_metrics",
    "daily_buckets",
    "empty_long",
    "metrics_for_candidates",
    "metrics_plan",
    "metrics_wide",
    "realtime_values",
    "source_predicate",
    "summaries",
    "summaries_frame",
    "window_totals",
]
