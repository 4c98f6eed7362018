"""Per-arm sufficient statistics from the interaction log.

Definitions (spec §15.3; conversion is per customer, not per impression):

* **exposed**: a customer with at least one ``recommendation`` row tagged with the
  experiment's key and a variant. A customer belongs to the arm of their *first* exposure
  (ties at the same instant go to the smallest variant key), so each customer counts once
  even if a changed split later showed them another arm.
* **converted**: an exposed customer with at least one row whose ``outcome`` is one of the
  experiment's ``conversionOutcomes`` at or after their first exposure. Conversions before
  the first exposure are not caused by the experiment and do not count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from engine.experiments.spec import HOLDOUT, ExperimentSpec, parse_experiment

EXPOSURE_OUTCOME = "recommendation"
ARMS_SCHEMA: dict[str, pl.DataType] = {
    "variant": pl.String(), "n": pl.Int64(), "conversions": pl.Int64(),
}


def reduce_log(
    log: pl.DataFrame | pl.LazyFrame, experiment: Mapping[str, Any] | ExperimentSpec
) -> pl.LazyFrame:
    """The one group-by over the log: ``customer_id, variant, exposed_at, converted_at``.

    Per (customer, variant) the earliest exposure; per customer (``variant`` null) the latest
    conversion. Lossless for the attribution above: the first exposure and its arm are the
    minimum over these rows, and "a conversion at or after the first exposure" holds exactly
    when the latest conversion is. ``arm_stats_sql`` runs the same group-by in DuckDB.
    """
    spec = parse_experiment(experiment)
    exposure = (
        (pl.col("experiment_key") == spec.key)
        & (pl.col("outcome") == EXPOSURE_OUTCOME)
        & pl.col("variant").is_not_null()
    )
    conversion = pl.col("outcome").is_in(
        [o for o in spec.conversion_outcomes if o != EXPOSURE_OUTCOME])
    return (
        log.lazy()
        .filter(exposure | conversion)
        .select(
            "customer_id",
            variant=pl.when(exposure).then("variant"),
            exposed_at=pl.when(exposure).then("ts"),
            converted_at=pl.when(conversion).then("ts"),
        )
        .group_by("customer_id", "variant")
        .agg(pl.col("exposed_at").min(), pl.col("converted_at").max())
    )


def arms_from_reduced(
    reduced: pl.LazyFrame, experiment: Mapping[str, Any] | ExperimentSpec
) -> pl.DataFrame:
    """Per-arm ``variant, n, conversions`` from ``reduce_log``'s rows (the attribution)."""
    spec = parse_experiment(experiment)
    first_exposure = pl.col("exposed_at").min().over("customer_id")
    customers = (
        # keep each customer's earliest exposure row(s) and their conversion row
        reduced.filter(pl.col("variant").is_null() | (pl.col("exposed_at") == first_exposure))
        .group_by("customer_id")
        .agg(pl.col("variant").min(), pl.col("exposed_at").min(), pl.col("converted_at").max())
        .filter(pl.col("variant").is_not_null())  # converted but never exposed
    )
    converted = (pl.col("converted_at") >= pl.col("exposed_at")).fill_null(False)
    counts = (
        customers.group_by("variant")
        .agg(n=pl.len().cast(pl.Int64), conversions=converted.sum().cast(pl.Int64))
        .collect()
    )
    order = _arm_order(spec, counts.get_column("variant").to_list())
    frame = pl.DataFrame({"variant": order}, schema={"variant": pl.String()})
    return (
        frame.join(counts, on="variant", how="left", maintain_order="left")
        .with_columns(pl.col("n", "conversions").fill_null(0))
        .cast(ARMS_SCHEMA)
    )


def arm_stats(
    log: pl.DataFrame | pl.LazyFrame, experiment: Mapping[str, Any] | ExperimentSpec
) -> pl.DataFrame:
    """``variant, n, conversions`` per arm: exposed and converted customers.

    ``log`` needs ``customer_id, experiment_key, variant, outcome, ts`` (the interaction log's
    columns). One group-by over the log (``reduce_log``), then the attribution on its much
    smaller result. Rows: the configured variants in declared order (zeros when unseen), then
    the holdout (when configured or logged), then any logged variant the experiment does not
    declare.
    """
    spec = parse_experiment(experiment)
    return arms_from_reduced(reduce_log(log, spec), spec)


def _arm_order(spec: ExperimentSpec, logged: list[str]) -> list[str]:
    declared = [v.key for v in spec.variants]
    if spec.holdout_percent > 0 or HOLDOUT in logged:
        declared.append(HOLDOUT)
    return declared + sorted(set(logged) - set(declared))


_REDUCE_SQL = """
    SELECT customer_id,
           CASE WHEN is_exposure THEN variant END AS variant,
           min(CASE WHEN is_exposure THEN ts END) AS exposed_at,
           max(CASE WHEN is_conversion THEN ts END) AS converted_at
    FROM (
        SELECT customer_id, variant, ts,
               coalesce(experiment_key = $key AND outcome = $exposure
                        AND variant IS NOT NULL, false) AS is_exposure,
               outcome IN (SELECT unnest($outcomes)) AS is_conversion
        FROM interactions
        WHERE tenant_id = $tenant
    )
    WHERE is_exposure
       OR (is_conversion AND customer_id IN (
            SELECT customer_id FROM interactions
            WHERE tenant_id = $tenant AND experiment_key = $key AND outcome = $exposure
              AND variant IS NOT NULL))
    GROUP BY ALL
"""


def arm_stats_sql(
    store: Any, tenant_id: str, experiment: Mapping[str, Any] | ExperimentSpec
) -> pl.DataFrame:
    """``arm_stats`` over a tenant's log in the store.

    The group-by over the log (``reduce_log``) runs inside DuckDB, next to the data, and only
    its result (at most one row per exposed customer and variant, plus one per converting
    exposed customer) comes back; the attribution is the same Polars code as ``arm_stats``.
    One definition of the rules, one place where the large scan happens.
    """
    spec = parse_experiment(experiment)
    params = {"tenant": tenant_id, "key": spec.key, "exposure": EXPOSURE_OUTCOME,
              "outcomes": [o for o in spec.conversion_outcomes if o != EXPOSURE_OUTCOME]}
    reduced = store.db.cursor().sql(_REDUCE_SQL, params=params).pl()
    return arms_from_reduced(reduced.lazy(), spec)
