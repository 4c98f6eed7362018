"""Deterministic experiment assignment: the same customer always lands in the same arm.

``bucket = fnv1a32(f"{experimentKey}:{customerId}") % 10_000`` (UTF-8 bytes). The bucket ->
arm mapping is documented in ``engine.experiments.spec``: buckets ``[0, holdoutPercent*100)``
are the holdout (``"__holdout__"``), the rest are split across variants in declared order by
cumulative ``trafficPercent``. The tenant-level holdout hashes ``f"{salt}:{customerId}"`` the
same way. Scalar functions serve the realtime path and tests; ``*_frame``/``holdout`` are
vectorized over a column of ids and agree with them exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from engine.errors import ValidationError
from engine.experiments._hash import fnv1a32, fnv1a32_series
from engine.experiments.spec import BUCKETS, ExperimentSpec, parse_experiment, round_half_up

ExperimentLike = Mapping[str, Any] | ExperimentSpec


def bucket(key: str, customer_id: str) -> int:
    """The bucket (0..9,999) of one customer in the experiment (or salt) ``key``."""
    return fnv1a32(f"{key}:{customer_id}") % BUCKETS


def assign(experiment: ExperimentLike, customer_id: str) -> str:
    """The arm of one customer: a variant key or ``"__holdout__"``."""
    spec = parse_experiment(experiment)
    index = bisect_right(spec.bucket_bounds(), bucket(spec.key, customer_id))
    return spec.labels[index]


def _ids(customers: pl.DataFrame | pl.Series | Sequence[str]) -> pl.Series:
    if isinstance(customers, pl.DataFrame):
        if "customer_id" not in customers.columns:
            raise ValidationError("the customers frame needs a customer_id column",
                                  field="customer_id")
        return customers.get_column("customer_id").cast(pl.String)
    if isinstance(customers, pl.Series):
        return customers.cast(pl.String).rename("customer_id")
    return pl.Series("customer_id", list(customers), dtype=pl.String)


def _buckets(ids: pl.Series, key: str) -> pl.Series:
    hashes = fnv1a32_series(ids, prefix=f"{key}:")
    values = pl.Series("bucket", (hashes % BUCKETS).astype(np.int32))
    return values.scatter(ids.is_null().arg_true(), None) if ids.null_count() else values


def assign_frame(
    customers: pl.DataFrame | pl.Series | Sequence[str], experiment: ExperimentLike
) -> pl.DataFrame:
    """``customer_id, bucket, variant`` for every id, in input order (null id -> null arm).

    ``customers`` is a Series of ids, a sequence of ids or a frame with ``customer_id``.
    """
    spec = parse_experiment(experiment)
    ids = _ids(customers)
    buckets = _buckets(ids, spec.key)
    index = np.searchsorted(np.asarray(spec.bucket_bounds()),
                            buckets.fill_null(0).to_numpy(), side="right")
    variant = pl.Series("variant", spec.labels, dtype=pl.String).gather(index)
    if ids.null_count():
        variant = variant.scatter(ids.is_null().arg_true(), None)
    return pl.DataFrame([ids, buckets, variant])


def _holdout_buckets(tenant_percent: float) -> int:
    if not isinstance(tenant_percent, int | float) or not 0 <= tenant_percent <= 100:
        raise ValidationError(
            f"holdoutPercentage must be a number between 0 and 100, got {tenant_percent!r}",
            field="holdoutPercentage",
        )
    return round_half_up(tenant_percent * BUCKETS / 100)


def in_holdout(customer_id: str, tenant_percent: float, salt: str = "holdout") -> bool:
    """Whether one customer falls in the tenant-level holdout (``holdoutPercentage``)."""
    return bucket(salt, customer_id) < _holdout_buckets(tenant_percent)


def holdout(
    customer_ids: pl.Series | Sequence[str], tenant_percent: float, salt: str = "holdout"
) -> pl.Series:
    """Boolean Series ``holdout`` (input order): customers in the tenant-level holdout."""
    limit = _holdout_buckets(tenant_percent)
    return (_buckets(_ids(customer_ids), salt) < limit).rename("holdout")
