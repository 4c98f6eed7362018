"""Scoring: priority_weighted, adaptive propensity evidence and PRIE arbitration."""

from engine.scoring.evidence import Evidence, compute_evidence, propensity_expr
from engine.scoring.prie import PrieWeights, prie
from engine.scoring.priority import priority_weighted, propensity_score

__all__ = [
    "Evidence",
    "PrieWeights",
    "compute_evidence",
    "prie",
    "priority_weighted",
    "propensity_expr",
    "propensity_score",
]
