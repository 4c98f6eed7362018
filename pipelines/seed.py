"""Load a sample pack (catalog documents, customers, history) into a tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.errors import ConflictError
from engine.store import Store, utcnow
from engine.store._migrations import CATALOG_TABLES

# Foreign-key order: every entity after the ones it references.
LOAD_ORDER = (
    "categories",
    "sub_categories",
    "channels",
    "placements",
    "offers",
    "creatives",
    "outcome_types",
    "qualification_rules",
    "contact_policies",
    "decision_flows",
    "flow_routes",
)
CUSTOMER_SCHEMA = "starbucks_customers"


@dataclass(frozen=True)
class SeedResult:
    tenant_id: str
    pack: str
    counts: dict[str, int]


def loaded_packs(store: Store, tenant_id: str) -> list[str]:
    rows = (
        store.db.cursor()
        .execute("SELECT name FROM packs WHERE tenant_id = ? ORDER BY loaded_at", [tenant_id])
        .fetchall()
    )
    return [r[0] for r in rows]


def purge_tenant_data(store: Store, tenant_id: str) -> None:
    """Hard-delete a tenant's catalog, customers, log and traces (system outcome types stay)."""
    with store.db.transaction() as cur:
        for table in CATALOG_TABLES:
            extra = (
                " AND json_extract(doc, '$.isSystem') IS NOT true"
                if table == "outcome_types"
                else ""
            )
            cur.execute(f"DELETE FROM {table} WHERE tenant_id = ?{extra}", [tenant_id])
        for (name,) in cur.execute(
            "SELECT table_name FROM customer_schemas WHERE tenant_id = ?", [tenant_id]
        ).fetchall():
            cur.execute(f'DROP TABLE IF EXISTS "{name}"')
        for table in ("customer_schemas", "interactions", "decision_traces", "packs"):
            cur.execute(f"DELETE FROM {table} WHERE tenant_id = ?", [tenant_id])
        store._bump_catalog_version(cur, tenant_id)
    store._forget_version(tenant_id)


def seed_starbucks(
    store: Store,
    tenant_id: str,
    *,
    customers: int = 1000,
    force: bool = False,
    as_of: datetime | None = None,
    seed: int = 42,
    history_per_customer: float = 10.0,
) -> SeedResult:
    """Load the Starbucks pack: catalog, ``customers`` generated customers, 90 days of history."""
    from pipelines import starbucks

    if not store.tenants.exists(tenant_id):
        store.tenants.create(tenant_id, name=tenant_id)
    if loaded_packs(store, tenant_id):
        if not force:
            raise ConflictError(
                f"tenant {tenant_id!r} already has sample data loaded; pass --force to replace "
                "its catalog, customers and history",
                field="tenantId",
            )
        purge_tenant_data(store, tenant_id)

    as_of = as_of or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    documents = starbucks.load_pack_documents()
    counts: dict[str, int] = {}
    for entity in LOAD_ORDER:
        repo = store.catalog[entity]
        for doc in documents.get(entity, []):
            repo.create(tenant_id, doc)
        counts[entity] = len(documents.get(entity, []))

    people = starbucks.generate_customers(customers, seed=seed)
    counts["customers"] = store.customers.load(tenant_id, CUSTOMER_SCHEMA, people)
    history = starbucks.generate_history(
        people, documents, days=90, as_of=as_of, seed=seed, per_customer=history_per_customer
    )
    counts["interactions"] = store.interactions.append(tenant_id, history)
    with store.db.transaction() as cur:
        cur.execute(
            "INSERT INTO packs VALUES (?, ?, ?, ?)",
            [tenant_id, "starbucks", utcnow(), orjson.dumps(counts).decode()],
        )
    return SeedResult(tenant_id, "starbucks", counts)


def pack_summary(store: Store, tenant_id: str) -> dict[str, Any]:
    """What a tenant holds, for the CLI's summary tables."""
    catalog = store.load_catalog(tenant_id)
    cur = store.db.cursor()
    outcomes = cur.execute(
        "SELECT outcome, count(*) FROM interactions WHERE tenant_id = ? GROUP BY 1 ORDER BY 2 DESC",
        [tenant_id],
    ).fetchall()
    creatives_per_offer = catalog.creatives.group_by("offer.id").len()
    offers = (
        catalog.offers.join(creatives_per_offer, on="offer.id", how="left")
        .sort(["offer.priority", "offer.name"], descending=[True, False])
        .select("offer.name", "offer.category", "offer.priority", "offer.status", "len")
        .rows()
    )
    return {
        "catalogVersion": catalog.version,
        "counts": {
            name: len(docs) for name, docs in catalog.documents.items() if name in LOAD_ORDER
        },
        "offers": offers,
        "customers": sum(s["rowCount"] for s in store.customers.schemas(tenant_id)),
        "interactions": outcomes,
        "flows": [
            (f["key"], f["status"], len(f.get("publishedVersions", [])))
            for f in catalog.decision_flows
        ],
    }
