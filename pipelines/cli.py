"""The ``nextbest`` command line: a thin layer over store and pipeline functions."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from engine.errors import NextbestError, ValidationError
from engine.settings import Settings
from engine.store import Store

app = typer.Typer(
    help="nextbest: next-best-action decisioning on an embedded DuckDB file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tenants_app = typer.Typer(help="Manage tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
seed_app = typer.Typer(help="Load sample data packs.", no_args_is_help=True)
experiments_app = typer.Typer(help="Analyse experiments.", no_args_is_help=True)
metrics_app = typer.Typer(help="Behavioural metrics.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")
app.add_typer(tenants_app, name="tenants")
app.add_typer(experiments_app, name="experiments")
app.add_typer(keys_app, name="keys")
app.add_typer(seed_app, name="seed")

out = Console()
err = Console(stderr=True)


def open_store(settings: Settings | None = None) -> Store:
    settings = settings or Settings()
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
    return Store(settings.database_path, pepper=pepper)


TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id.")]


@app.command()
def init() -> None:
    """Create the database file (or migrate it to the current schema)."""
    settings = Settings()
    store = open_store(settings)
    out.print(
        f"database ready: [bold]{settings.database_path}[/] "
        f"(schema version {store.db.schema_version()})"
    )
    store.close()


@tenants_app.command("create")
def tenants_create(
    tenant_id: Annotated[str, typer.Argument(help="Tenant id (letters, digits, '_' or '-').")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create a tenant (with the 10 system outcome types)."""
    store = open_store()
    tenant = store.tenants.create(tenant_id, name=name)
    out.print(f"tenant created: [bold]{tenant['id']}[/]")
    store.close()


@keys_app.command("create")
def keys_create(
    tenant: TenantOpt,
    name: Annotated[str | None, typer.Option(help="Key name.")] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="ISO-8601 expiry (UTC).")
    ] = None,
) -> None:
    """Mint an API key. The raw key is printed once and never stored."""
    expiry = None
    if expires_at is not None:
        try:
            expiry = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(
                f"--expires-at {expires_at!r} is not an ISO-8601 time", field="expiresAt"
            ) from None
        if expiry.tzinfo is not None:
            expiry = expiry.astimezone(tz=None).replace(tzinfo=None)
    store = open_store()
    record, raw = store.api_keys.create(tenant, name=name, expires_at=expiry)
    store.close()
    out.print(f"API key [bold]{record.name}[/] ({record.id}) for tenant {tenant}:")
    print(raw)
    err.print("Store it now: it cannot be shown again.")


@seed_app.command("starbucks")
def seed_starbucks_cmd(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant id.")] = "demo",
    customers: Annotated[int, typer.Option(min=1, help="Customers to generate.")] = 1000,
    force: Annotated[bool, typer.Option(help="Replace data already loaded.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the generators.")] = 42,
) -> None:
    """Load the Starbucks sample pack into a tenant."""
    from pipelines.seed import seed_starbucks

    store = open_store()
    with out.status(f"loading the Starbucks pack into tenant {tenant!r}..."):
        seed_starbucks(store, tenant, customers=customers, force=force, seed=seed)
    print_summary(store, tenant)
    store.close()


@experiments_app.command("report")
def experiments_report(
    key: Annotated[str, typer.Argument(help="Experiment key.")],
    tenant: TenantOpt,
) -> None:
    """Conversion per variant, uplift vs control, significance, sample-ratio check."""
    from pipelines.experiments import report_for

    store = open_store()
    try:
        out.print(report_for(store, tenant, key))
    finally:
        store.close()


@metrics_app.command("refresh")
def metrics_refresh(
    tenant: TenantOpt,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO-8601 time to compute as of (default now).")
    ] = None,
    parquet: Annotated[
        str | None, typer.Option(help="Also write the values to this Parquet file.")
    ] = None,
    prune_older: Annotated[
        bool, typer.Option("--prune-older", help="Drop snapshots older than this as-of.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Compute every active metric for every customer from the interaction log."""
    from pipelines.metrics import refresh_command

    store = open_store()
    try:
        refresh_command(
            store,
            tenant,
            as_of=as_of,
            parquet=parquet,
            prune_older=prune_older,
            progress=progress,
            console=out,
        )
    finally:
        store.close()


@app.command("score")
def score(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant id.")] = "demo",
    flow: Annotated[
        str | None, typer.Option(help="Decision flow key (default: the tenant's default flow).")
    ] = None,
    customers: Annotated[
        str | None,
        typer.Option(
            help="Customer schema name or a .parquet file (ids, or ids + attributes); "
            "default: the tenant's first customer table."
        ),
    ] = None,
    segment: Annotated[
        str | None,
        typer.Option(help="Only customers whose segment column contains this (e.g. high_income)."),
    ] = None,
    segment_column: Annotated[
        str, typer.Option("--segment-column", help="Customer column the segment filter reads.")
    ] = "segments",
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Decision time, ISO-8601 (default: now; when resuming, the run's)."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=0, help="At most this many customers (the first by id).")
    ] = None,
    output: Annotated[
        Path, typer.Option("--out", help="Output directory; each run writes <out>/<run-id>/.")
    ] = Path("out/batch"),
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Name the run; rerun the same id to resume it.")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Customers per chunk.")
    ] = 100_000,
    log_decisions: Annotated[
        bool, typer.Option("--log-decisions", help="Append the decisions to the interaction log.")
    ] = False,
    channel: Annotated[str | None, typer.Option(help="Channel type of the request.")] = None,
    placement: Annotated[str | None, typer.Option(help="Placement id or slot type.")] = None,
    offers: Annotated[
        int, typer.Option(min=1, max=50, help="Decisions per customer (the request's limit).")
    ] = 5,
    experiment: Annotated[
        str | None, typer.Option(help="Experiment key whose arm fills experiment_variant.")
    ] = None,
    content: Annotated[
        bool,
        typer.Option("--content", help="Also render and write each decision's creative content."),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=8, help="Chunks decided at once (default: one per core, at most 4)."
        ),
    ] = None,
) -> None:
    """Score customers with a decision flow in chunks (resumable), Parquet out."""
    from pipelines.batch_score import score_command

    store = open_store()
    try:
        score_command(
            store,
            tenant,
            flow=flow,
            customers=customers,
            segment=segment,
            segment_column=segment_column,
            as_of=as_of,
            limit=limit,
            out=output,
            run_id=run_id,
            chunk_size=chunk_size,
            log_decisions=log_decisions,
            channel=channel,
            placement=placement,
            offers=offers,
            experiment=experiment,
            content=content,
            workers=workers,
            console=out,
        )
    finally:
        store.close()


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, help="Customers to generate.")] = 1000,
) -> None:
    """Build the embedded database, load the Starbucks pack into tenant 'demo', summarize it."""
    from pipelines.seed import loaded_packs, seed_starbucks

    settings = Settings()
    store = open_store(settings)
    if loaded_packs(store, "demo"):
        out.print("The Starbucks pack is already loaded in tenant [bold]demo[/].")
    else:
        with out.status("loading the Starbucks pack into tenant 'demo'..."):
            seed_starbucks(store, "demo", customers=customers)
    out.print(f"database: [bold]{settings.database_path}[/]")
    print_summary(store, "demo")
    store.close()


def print_summary(store: Store, tenant_id: str) -> None:
    from pipelines.seed import pack_summary

    summary = pack_summary(store, tenant_id)
    counts = Table(title=f"Tenant {tenant_id} — catalog version {summary['catalogVersion']}")
    counts.add_column("entity")
    counts.add_column("count", justify="right")
    for name, n in summary["counts"].items():
        counts.add_row(name.replace("_", " "), str(n))
    counts.add_row("customers", f"{summary['customers']:,}")
    out.print(counts)

    offers = Table(title="Offers")
    for col, justify in (
        ("offer", "left"),
        ("category", "left"),
        ("priority", "right"),
        ("status", "left"),
        ("creatives", "right"),
    ):
        offers.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, category, priority, status, n in summary["offers"]:
        offers.add_row(name, category or "", str(priority), status, str(n or 0))
    out.print(offers)

    log = Table(title="Interaction history")
    log.add_column("outcome")
    log.add_column("rows", justify="right")
    for outcome, n in summary["interactions"]:
        log.add_row(outcome, f"{n:,}")
    out.print(log)

    flows = Table(title="Decision flows")
    for col in ("key", "status", "published versions"):
        flows.add_column(col)
    for key, status, versions in summary["flows"]:
        flows.add_row(key, status, str(versions))
    out.print(flows)


@app.command()
def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the Starbucks pack into tenant 'demo' first.")
    ] = False,
    host: Annotated[str | None, typer.Option(help="Address to bind (NEXTBEST_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (NEXTBEST_PORT).")] = None,
    customers: Annotated[int, typer.Option(min=1, help="Customers to generate for --demo.")] = 1000,
) -> None:
    """Serve the Recommend/Respond API (one process; threads for decisions and writes)."""
    import uvicorn

    from api import create_app

    settings = Settings()
    updates = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if updates:
        settings = settings.model_copy(update=updates)
    if demo:
        _prepare_demo(settings, customers)
    out.print(
        f"serving on [bold]http://{settings.host}:{settings.port}[/] "
        f"(docs at /docs, database {settings.database_path})"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        workers=1,
        log_level="warning",
        access_log=False,
        # the API reads no client address and names no server: skip both per request
        proxy_headers=False,
        server_header=False,
    )


def _prepare_demo(settings: Settings, customers: int) -> None:
    """Starbucks pack in tenant 'demo' (if not loaded) and an API key; prints curl lines."""
    from pipelines.seed import loaded_packs, seed_starbucks

    store = open_store(settings)
    try:
        if not loaded_packs(store, "demo"):
            with out.status("loading the Starbucks pack into tenant 'demo'..."):
                seed_starbucks(store, "demo", customers=customers)
        fixed = settings.demo_api_key.get_secret_value() if settings.demo_api_key else None
        if fixed is not None and store.api_keys.verify("demo", fixed) is not None:
            raw = fixed
        else:
            _, raw = store.api_keys.create("demo", name="demo", raw_key=fixed)
    finally:
        store.close()
    base = f"http://{settings.host}:{settings.port}/api/v1"
    auth = f"-H 'x-tenant-id: demo' -H 'x-api-key: {raw}' -H 'content-type: application/json'"
    out.print("tenant: [bold]demo[/]")
    out.print("API key (store it; set NEXTBEST_DEMO_API_KEY to keep it across runs):")
    print(raw)
    out.print("Recommend:")
    print(
        f'curl -s {base}/recommend {auth} -d \'{{"customerId": "SBX-000042", '
        f'"decisionFlowKey": "starbucks-decision-pipeline", "channel": "web", '
        f'"limit": 3, "debug": true}}\''
    )
    out.print("Respond (use a recommendationId from the answer above):")
    print(
        f'curl -s {base}/respond {auth} -d \'{{"customerId": "SBX-000042", '
        f'"recommendationId": "<recommendationId>", "rank": 1, '
        f'"outcome": "click", "idempotencyKey": "demo-click-1"}}\''
    )


def main() -> None:
    """Console entry point: domain errors are one clear line and a non-zero exit."""
    try:
        app()
    except NextbestError as exc:
        err.print(f"[red]error:[/] {exc.message}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
