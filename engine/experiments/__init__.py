"""Experiments: deterministic assignment of customers to variants and holdouts.

The statistics that analyse an experiment live in ``pipelines.experiments``.
"""

from engine.experiments._hash import fnv1a32
from engine.experiments.assign import assign, assign_frame, bucket, holdout, in_holdout
from engine.experiments.spec import (
    BUCKETS,
    HOLDOUT,
    ExperimentSpec,
    VariantSpec,
    parse_experiment,
)

__all__ = [
    "BUCKETS",
    "HOLDOUT",
    "ExperimentSpec",
    "VariantSpec",
    "assign",
    "assign_frame",
    "bucket",
    "fnv1a32",
    "holdout",
    "in_holdout",
    "parse_experiment",
]
