"""Experiments and holdout on the recommend path: which arm a request's customer is in.

A customer in the tenant's ``holdoutPercentage`` (``engine.experiments.in_holdout``), or in
the active experiment's own holdout, gets the priority-only fallback flow and
``controlGroup: true``; otherwise the active experiment's variant
(``engine.experiments.assign``, the same function the batch uses) may switch the flow
(``decisionFlowId``) and override creative weights (``creativeWeights``) for the request; a
variant's flow wins over the request's ``decisionFlowKey`` and the routes. The response
carries ``experiment: {key, variant}``; the decision's log rows carry ``experiment_key`` and
``variant`` (``__holdout__`` for a holdout; a tenant-holdout row without a running
experiment has only the variant), which is what ``pipelines.experiments.arm_stats`` counts
as an exposure. Assignment is stateless (the hash): editing the split moves customers, and
the analysis keeps each customer in the arm of their first exposure.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from api.runtime import Runtime
from engine.catalog import Catalog
from engine.errors import NotFoundError, ValidationError
from engine.experiments import HOLDOUT, ExperimentSpec, assign, in_holdout, parse_experiment
from engine.flow import base_nba_config

log = logging.getLogger("nextbest.api")


@dataclass(frozen=True, slots=True)
class Arm:
    """Where a request's customer falls: an experiment variant, a holdout, or neither."""

    experiment_key: str | None = None
    variant: str | None = None  # a variant key, or HOLDOUT
    control_group: bool = False  # tenant or experiment holdout: priority-only fallback
    flow_id: str | None = None  # the variant's decisionFlowId
    weights: tuple[tuple[str, int], ...] = ()  # the variant's creativeWeights


NO_ARM = Arm()


@dataclass(frozen=True)
class ActiveExperiment:
    """The tenant's running experiment (the latest updated one with status active)."""

    spec: ExperimentSpec
    flows: Mapping[str, str | None]  # variant key -> decisionFlowId
    weights: Mapping[str, tuple[tuple[str, int], ...]]  # variant key -> creative weights

    @classmethod
    def of(cls, catalog: Catalog) -> ActiveExperiment | None:
        docs = [d for d in catalog.documents.get("experiments", ())
                if d.get("status") == "active"]
        if not docs:
            return None
        doc = max(docs, key=lambda d: (d.get("updatedAt") or "", d["id"]))
        try:
            spec = parse_experiment(doc)
        except ValidationError as exc:  # stored before validation: serve without it
            log.error("tenant %s: experiment %r cannot run: %s", catalog.tenant_id,
                      doc.get("key"), exc.message)
            return None
        variants = doc.get("variants") or []
        return cls(
            spec,
            {v["key"]: v.get("decisionFlowId") for v in variants},
            {v["key"]: tuple(sorted((v.get("creativeWeights") or {}).items()))
             for v in variants},
        )

    def arm(self, customer_id: str) -> Arm:
        variant = assign(self.spec, customer_id)
        if variant == HOLDOUT:
            return Arm(self.spec.key, HOLDOUT, True)
        return Arm(self.spec.key, variant, False, self.flows.get(variant),
                   self.weights.get(variant, ()))


HOLDOUT_FLOW_KEY = "control-group-priority"


def _holdout_flow() -> dict[str, Any]:
    """The "no NBA" fallback of holdout customers (spec §15.4): the Base NBA flow's gates
    (qualification, contact policies), then offers ranked by priority weight alone."""
    config = base_nba_config()
    nodes = []
    for node in config["nodes"]:
        if node["type"] == "extension_point":
            continue
        if node["type"] == "rank":
            node = {**node, "config": {"method": "score"}}
        nodes.append(node)
    config = {**config, "nodes": nodes}
    return {
        "id": HOLDOUT_FLOW_KEY, "key": HOLDOUT_FLOW_KEY, "name": "Control group (priority only)",
        "status": "active",
        "publishedVersions": [{"version": 1, "config": config,
                               "publishedAt": "1970-01-01T00:00:00+00:00"}],
    }


HOLDOUT_FLOW = _holdout_flow()


def arm_flow(catalog: Catalog, arm: Arm) -> dict[str, Any] | None:
    """The flow document the arm imposes: the holdout fallback, the variant's flow (404 if
    it does not exist), or ``None`` when the request's own routing decides."""
    if arm.control_group:
        return HOLDOUT_FLOW
    if arm.flow_id is None:
        return None
    doc = next((f for f in catalog.decision_flows if arm.flow_id in (f["id"], f["key"])), None)
    if doc is None:
        raise NotFoundError(
            f"experiment {arm.experiment_key!r} variant {arm.variant!r} runs decision "
            f"flow {arm.flow_id!r}, which does not exist; fix the experiment",
            field="decisionFlowId",
        )
    return doc


class Arms:
    """Per tenant: the active experiment (per catalog version) and the catalogs carrying a
    variant's creative weights (per catalog snapshot)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # tenant -> (catalog version, its active experiment)
        self._experiments: dict[str, tuple[int, ActiveExperiment | None]] = {}
        # (tenant, experiment, variant) -> (base catalog, catalog with the variant's weights)
        self._weighted: dict[tuple[str, str, str], tuple[Catalog, Catalog]] = {}

    def experiment(self, catalog: Catalog) -> ActiveExperiment | None:
        hit = self._experiments.get(catalog.tenant_id)
        if hit is None or hit[0] != catalog.version:
            hit = self._experiments[catalog.tenant_id] = (catalog.version,
                                                          ActiveExperiment.of(catalog))
        return hit[1]

    def arm(self, tenant_id: str, customer: str, catalog: Catalog) -> Arm:
        """The customer's arm: tenant holdout first, then the active experiment's variant."""
        experiment = self.experiment(catalog)
        state = self.runtime.tenants[tenant_id]
        share = state.settings.get("holdoutPercentage") or 0
        if share and in_holdout(customer, float(share)):
            return Arm(experiment.spec.key if experiment else None, HOLDOUT, True)
        return NO_ARM if experiment is None else experiment.arm(customer)

    def with_weights(self, catalog: Catalog, arm: Arm) -> Catalog:
        """``catalog`` with the variant's creative weights (kept per catalog snapshot, so
        the flow compiled against it is cached too)."""
        key = (catalog.tenant_id, arm.experiment_key or "", arm.variant or "")
        hit = self._weighted.get(key)
        if hit is not None and hit[0] is catalog:
            return hit[1]
        weights = dict(arm.weights)
        creatives = catalog.creatives.with_columns(
            pl.col("creative.id")
            .replace_strict(weights, default=pl.col("creative.weight"), return_dtype=pl.Int64)
            .alias("creative.weight")
        )
        derived = dataclasses.replace(catalog, creatives=creatives)
        self._weighted[key] = (catalog, derived)
        return derived
