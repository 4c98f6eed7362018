from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from engine.errors import ConflictError, NotFoundError, ValidationError
from engine.store import Store
from engine.store._migrations import SCHEMA_VERSION


def test_migrations_run_on_an_empty_file_and_are_noops_on_a_current_one(tmp_path: Path) -> None:
    path = tmp_path / "fresh.duckdb"
    store = Store(path, pepper="p")
    assert store.db.schema_version() == SCHEMA_VERSION
    assert store.db.migrate() == 0
    store.tenants.create("acme")
    store.close()

    again = Store(path, pepper="p")
    assert again.db.migrate() == 0
    assert again.db.schema_version() == SCHEMA_VERSION
    assert again.tenants.exists("acme")
    rows = again.db.cursor().execute("SELECT count(*) FROM schema_version").fetchone()[0]
    assert rows == SCHEMA_VERSION
    again.close()


def test_a_second_process_cannot_open_the_file_and_is_told_why(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "locked.duckdb"
    store = Store(path, pepper="p")
    code = (
        "from engine.store import Store\n"
        "from engine.errors import ConflictError\n"
        f"try:\n    Store({str(path)!r}, pepper='p')\n"
        "except ConflictError as e:\n    print('conflict', e.field)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    store.close()
    assert "conflict databasePath" in out.stdout, out.stderr


def test_raw_api_key_never_reaches_the_database(tmp_path: Path) -> None:
    path = tmp_path / "keys.duckdb"
    store = Store(path, pepper="pepper-1")
    store.tenants.create("acme")
    record, raw = store.api_keys.create("acme", name="ci")
    assert raw.startswith("krn_") and record.prefix == raw[:12]
    cur = store.db.cursor()
    for (table,) in cur.execute("SELECT table_name FROM information_schema.tables").fetchall():
        for row in cur.execute(f'SELECT * FROM "{table}"').fetchall():
            assert all(raw not in str(v) for v in row), table
    store.close()
    data = path.read_bytes()
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        data += wal.read_bytes()
    assert raw.encode() not in data


def test_api_keys_verify_only_for_their_tenant_until_revoked_or_expired(store: Store) -> None:
    record, raw = store.api_keys.create("acme")
    assert store.api_keys.verify("acme", raw) == record
    assert store.api_keys.verify("globex", raw) is None
    assert store.api_keys.verify("acme", raw + "x") is None
    assert [k.id for k in store.api_keys.list("acme")] == [record.id]
    assert store.api_keys.list("globex") == []
    with pytest.raises(NotFoundError):
        store.api_keys.revoke("globex", record.id)
    store.api_keys.revoke("acme", record.id, reason="rotated")
    assert store.api_keys.verify("acme", raw) is None
    assert store.api_keys.list("acme") == []


def test_expired_keys_fail(store: Store) -> None:
    soon = datetime.now(UTC).replace(tzinfo=None) + timedelta(milliseconds=300)
    _, raw = store.api_keys.create("acme", expires_at=soon)
    assert store.api_keys.verify("acme", raw) is not None
    import time

    time.sleep(0.4)
    assert store.api_keys.verify("acme", raw) is None
    with pytest.raises(ValidationError) as err:
        store.api_keys.create("acme", expires_at=soon - timedelta(days=1))
    assert err.value.field == "expiresAt"


def test_the_pepper_is_generated_once_per_database_file(tmp_path: Path) -> None:
    path = tmp_path / "pep.duckdb"
    store = Store(path)
    store.tenants.create("acme")
    _, raw = store.api_keys.create("acme")
    store.close()
    pepper_file = path.with_name(path.name + ".pepper")
    assert pepper_file.stat().st_mode & 0o777 == 0o600
    reopened = Store(path)
    assert reopened.api_keys.verify("acme", raw) is not None
    reopened.close()


def test_tenants_validate_ids_and_refuse_duplicates(store: Store) -> None:
    with pytest.raises(ConflictError):
        store.tenants.create("acme")
    with pytest.raises(ValidationError) as err:
        store.tenants.create("bad id!")
    assert err.value.field == "tenantId"


def test_catalog_snapshot_is_cached_until_a_write(store: Store) -> None:
    store.offers.create("acme", {"name": "A", "status": "active"})
    first = store.load_catalog("acme")
    assert store.load_catalog("acme") is first
    store.offers.create("globex", {"name": "Other tenant"})
    assert store.load_catalog("acme") is first  # another tenant's write changes nothing here

    offer_id = first.offers["offer.id"][0]
    store.offers.update("acme", offer_id, {"status": "paused"})
    fresh = store.load_catalog("acme")
    assert fresh is not first and fresh.version > first.version
    assert fresh.offers["offer.status"].to_list() == ["paused"]
    assert store.load_catalog("acme") is fresh


def test_snapshot_holds_only_non_deleted_rows_of_the_tenant(store: Store) -> None:
    keep = store.offers.create("acme", {"name": "Keep"})
    drop = store.offers.create("acme", {"name": "Drop"})
    store.offers.create("globex", {"name": "Theirs"})
    store.offers.delete("acme", drop["id"])
    snapshot = store.load_catalog("acme")
    assert snapshot.offers["offer.id"].to_list() == [keep["id"]]
    assert snapshot.outcome_types.height == 10


def test_interactions_append_and_read_history_per_tenant(store: Store) -> None:
    ts = datetime(2026, 5, 1, 12, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "id": ["i1", "i2", "i3"],
            "customer_id": ["c1", "c2", "c1"],
            "offer_id": ["o1", "o1", "o2"],
            "outcome": ["impression", "click", "impression"],
            "classification": ["neutral", "positive", "neutral"],
            "ts": [ts, ts + timedelta(hours=1), ts + timedelta(days=2)],
        }
    )
    assert store.interactions.append("acme", frame) == 3
    history = store.interactions.history("acme", ["c1"])
    assert history["outcome"].to_list() == ["impression", "impression"]
    assert history.schema["ts"] == pl.Datetime("us", "UTC")
    assert history["ts"][0] == ts
    assert store.interactions.history("acme", ["c1"], since=ts + timedelta(days=1)).height == 1
    assert store.interactions.history("globex", ["c1"]).height == 0
    with pytest.raises(NotFoundError):
        store.interactions.append("nobody", frame)
    assert store.interactions.count("acme") == 3


def test_customer_tables_per_tenant_from_frames_and_files(store: Store, tmp_path: Path) -> None:
    frame = pl.DataFrame({"customer_id": ["c1", "c2"], "age": [17, 40], "tier": ["gold", None]})
    assert store.customers.load("acme", "people", frame) == 2
    got = store.customers.fetch("acme", ["c2", "missing"])
    assert got.columns == ["customer_id", "customer.age", "customer.tier"]
    assert got.to_dicts() == [{"customer_id": "c2", "customer.age": 40, "customer.tier": None}]
    with pytest.raises(NotFoundError):
        store.customers.fetch("globex", ["c1"])

    frame.write_parquet(tmp_path / "people.parquet")
    assert store.customers.load("globex", "people", tmp_path / "people.parquet") == 2
    assert store.customers.count("globex") == 2
    with pytest.raises(ValidationError) as err:
        store.customers.load("acme", "people", pl.DataFrame({"customer_id": ["a", "a"]}))
    assert err.value.field == "customer_id"
    assert store.customers.count("acme") == 2
