"""What a batch run reports: ``RunSummary`` (also ``summary.json``) and its rich table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from engine.catalog import Catalog
from engine.experiments import ExperimentSpec
from engine.flow import CompiledFlow
from pipelines._batch_manifest import Manifest

FUNNEL_STAGES = ("candidateCount", "afterQualification", "afterContactPolicy", "finalCount")


@dataclass(frozen=True)
class RunSummary:
    """What a run did. Totals cover every chunk of the run (all attempts); durations and
    rates cover this invocation (``resumed_chunks`` were already done when it started)."""

    run_id: str
    directory: Path
    tenant_id: str
    flow_key: str
    flow_version: int | str
    catalog_version: int
    as_of: datetime
    customers: int
    decisions: int
    chunks: int
    resumed_chunks: int
    customers_this_run: int
    candidate_pairs: int
    candidate_pairs_this_run: int
    duration_s: float
    funnel: dict[str, int]
    categories: dict[str, int]
    offers: dict[str, int]
    experiment: str | None
    logged_rows: int
    files: list[Path] = field(default_factory=list)

    @property
    def customers_per_s(self) -> float:
        return self.customers_this_run / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def candidate_pairs_per_s(self) -> float:
        return self.candidate_pairs_this_run / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "directory": str(self.directory),
            "tenantId": self.tenant_id,
            "flowKey": self.flow_key,
            "flowVersion": self.flow_version,
            "catalogVersion": self.catalog_version,
            "asOf": iso(self.as_of),
            "customers": self.customers,
            "decisions": self.decisions,
            "chunks": self.chunks,
            "resumedChunks": self.resumed_chunks,
            "customersThisRun": self.customers_this_run,
            "durationSeconds": round(self.duration_s, 3),
            "customersPerSecond": round(self.customers_per_s, 1),
            "candidatePairs": self.candidate_pairs,
            "candidatePairsThisRun": self.candidate_pairs_this_run,
            "candidatePairsPerSecond": round(self.candidate_pairs_per_s, 1),
            "funnel": self.funnel,
            "offersByCategory": self.categories,
            "offersById": self.offers,
            "experiment": self.experiment,
            "loggedRows": self.logged_rows,
            "files": [f.name for f in self.files],
        }


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_summary(
    manifest: Manifest, *, run_id: str, tenant_id: str, flow: CompiledFlow, catalog: Catalog,
    as_of: datetime, resumed: int, customers_now: int, pairs_now: int, duration: float,
    experiment: ExperimentSpec | None,
) -> RunSummary:
    funnel = dict.fromkeys(FUNNEL_STAGES, 0)
    categories: dict[str, int] = {}
    offers: dict[str, int] = {}
    for chunk in manifest.chunks:
        for k, v in chunk.funnel.items():
            funnel[k] = funnel.get(k, 0) + v
        for k, v in chunk.categories.items():
            categories[k] = categories.get(k, 0) + v
        for k, v in chunk.offers.items():
            offers[k] = offers.get(k, 0) + v
    return RunSummary(
        run_id=run_id,
        directory=manifest.directory,
        tenant_id=tenant_id,
        flow_key=str(flow.key),
        flow_version=flow.version,
        catalog_version=catalog.version,
        as_of=as_of,
        customers=manifest.customers,
        decisions=sum(c.rows for c in manifest.chunks),
        chunks=len(manifest.chunks),
        resumed_chunks=resumed,
        customers_this_run=customers_now,
        candidate_pairs=funnel["candidateCount"],
        candidate_pairs_this_run=pairs_now,
        duration_s=duration,
        funnel=funnel,
        categories=dict(sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))),
        offers=dict(sorted(offers.items(), key=lambda kv: (-kv[1], kv[0]))),
        experiment=None if experiment is None else experiment.key,
        logged_rows=sum(c.logged for c in manifest.chunks),
        files=manifest.files(),
    )


def summary_table(summary: RunSummary) -> Table:
    """The run summary as a rich table (for the CLI)."""
    table = Table(title=f"Batch run {summary.run_id}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("flow", f"{summary.flow_key} v{summary.flow_version}"),
        ("as of", iso(summary.as_of)),
        ("customers", f"{summary.customers:,}"),
        ("decisions", f"{summary.decisions:,}"),
        ("chunks (resumed)", f"{summary.chunks} ({summary.resumed_chunks})"),
        ("duration", f"{summary.duration_s:,.2f} s"),
        ("customers/s", f"{summary.customers_per_s:,.0f}"),
        ("candidate pairs/s", f"{summary.candidate_pairs_per_s:,.0f}"),
    ]
    rows += [(f"funnel: {k}", f"{v:,}") for k, v in summary.funnel.items()]
    rows += [(f"offers: {k}", f"{v:,}") for k, v in summary.categories.items()]
    if summary.logged_rows:
        rows.append(("logged recommendation rows", f"{summary.logged_rows:,}"))
    rows.append(("output", str(summary.directory)))
    for what, value in rows:
        table.add_row(what, value)
    return table
