from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.errors import ConflictError
from engine.store import Store
from pipelines.seed import loaded_packs, seed_starbucks

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "seed.duckdb", pepper="p")
    yield s
    s.close()


def snapshot_counts(store: Store, tenant: str) -> dict[str, int]:
    catalog = store.load_catalog(tenant)
    counts = {k: len(v) for k, v in catalog.documents.items()}
    counts["interactions"] = store.interactions.count(tenant)
    counts["customers"] = store.customers.count(tenant)
    return counts


def test_seed_loads_the_pack_into_a_new_tenant(store: Store) -> None:
    result = seed_starbucks(store, "demo", customers=200, as_of=AS_OF)
    catalog = store.load_catalog("demo")
    assert catalog.offers.height == 10
    assert catalog.creatives.height >= 40
    assert catalog.channels.height == 4
    assert len(catalog.documents["categories"]) == 3
    assert catalog.flow_by_key("starbucks-decision-pipeline")["publishedVersions"]
    assert store.customers.count("demo") == 200
    assert result.counts["interactions"] == store.interactions.count("demo") > 0
    assert loaded_packs(store, "demo") == ["starbucks"]


def test_seeding_twice_without_force_refuses_and_changes_nothing(store: Store) -> None:
    seed_starbucks(store, "demo", customers=50, as_of=AS_OF)
    before = snapshot_counts(store, "demo")
    version = store.catalog_version("demo")
    with pytest.raises(ConflictError, match="--force"):
        seed_starbucks(store, "demo", customers=80, as_of=AS_OF)
    assert snapshot_counts(store, "demo") == before
    assert store.catalog_version("demo") == version


def test_force_replaces_the_pack(store: Store) -> None:
    seed_starbucks(store, "demo", customers=50, as_of=AS_OF)
    seed_starbucks(store, "demo", customers=80, as_of=AS_OF, force=True)
    assert store.customers.count("demo") == 80
    assert store.load_catalog("demo").offers.height == 10
    assert loaded_packs(store, "demo") == ["starbucks"]


def test_seeding_one_tenant_leaves_another_alone(store: Store) -> None:
    seed_starbucks(store, "a", customers=30, as_of=AS_OF)
    before = snapshot_counts(store, "a")
    seed_starbucks(store, "b", customers=40, as_of=AS_OF)
    seed_starbucks(store, "b", customers=40, as_of=AS_OF, force=True)
    assert snapshot_counts(store, "a") == before
