from __future__ import annotations

import pytest

from engine.errors import ConflictError, NotFoundError, ValidationError
from engine.store import Store
from engine.store._entities import ENTITIES
from tests.engine.store.conftest import seed_entity, update_for

ALL = sorted(ENTITIES)


def table_dump(store: Store) -> list[tuple]:
    cur = store.db.cursor()
    out = []
    for table in [*ENTITIES, "tenants", "api_keys", "tenant_catalog_versions"]:
        out.append((table, sorted(map(str, cur.execute(f"SELECT * FROM {table}").fetchall()))))
    return out


@pytest.mark.parametrize("entity", ALL)
def test_round_trip_versions_and_soft_delete(store: Store, entity: str) -> None:
    repo = store.catalog[entity]
    doc = seed_entity(store, "acme", entity)
    assert doc["version"] == 1 and doc["deletedAt"] is None
    assert repo.get("acme", doc["id"]) == doc

    updated = repo.update("acme", doc["id"], update_for(entity))
    assert updated["version"] == 2
    assert updated["createdAt"] == doc["createdAt"]

    deleted = repo.delete("acme", doc["id"])
    assert deleted["deletedAt"] is not None and deleted["version"] == 3
    with pytest.raises(NotFoundError):
        repo.get("acme", doc["id"])
    visible = [d["id"] for d in repo.list("acme").data]
    hidden = [d["id"] for d in repo.list("acme", include_deleted=True).data]
    assert doc["id"] not in visible and doc["id"] in hidden


@pytest.mark.parametrize("entity", ALL)
def test_other_tenant_never_sees_or_changes_rows(store: Store, entity: str) -> None:
    repo = store.catalog[entity]
    doc = seed_entity(store, "acme", entity)
    before = table_dump(store)
    with pytest.raises(NotFoundError):
        repo.get("globex", doc["id"])
    with pytest.raises(NotFoundError):
        repo.update("globex", doc["id"], update_for(entity))
    with pytest.raises(NotFoundError):
        repo.delete("globex", doc["id"])
    assert doc["id"] not in [d["id"] for d in repo.list("globex", include_deleted=True).data]
    assert table_dump(store) == before
    assert repo.get("acme", doc["id"]) == doc


def test_references_must_exist_in_the_same_tenant(store: Store) -> None:
    offer = seed_entity(store, "acme", "offers")
    channel = seed_entity(store, "acme", "channels")
    before = table_dump(store)
    with pytest.raises(ValidationError) as err:
        store.creatives.create(
            "globex", {"name": "x", "offerId": offer["id"], "channelId": channel["id"]}
        )
    assert err.value.field == "offerId"
    assert table_dump(store) == before


def test_pagination_pages_are_disjoint_and_complete(store: Store) -> None:
    ids = {store.offers.create("acme", {"name": f"Offer {i}"})["id"] for i in range(23)}
    seen: list[str] = []
    cursor = None
    while True:
        page = store.offers.list("acme", limit=5, cursor=cursor)
        assert page.total == 23
        seen += [d["id"] for d in page.data]
        if not page.has_more:
            assert page.next_cursor is None
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == ids
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (lambda s: s.offers.create("nobody", {"name": "x"}), NotFoundError, "tenantId"),
        (
            lambda s: s.offers.create("acme", {"name": "x", "status": "live"}),
            ValidationError,
            "status",
        ),
        (
            lambda s: s.offers.create("acme", {"name": "x", "priority": 101}),
            ValidationError,
            "priority",
        ),
        (lambda s: s.offers.create("acme", {"name": ""}), ValidationError, "name"),
        (lambda s: s.offers.create("acme", {"name": "x", "bogus": 1}), ValidationError, "bogus"),
        (
            lambda s: s.creatives.create(
                "acme", {"name": "x", "offerId": "o", "channelId": "c", "weight": -1}
            ),
            ValidationError,
            "weight",
        ),
        (
            lambda s: s.contact_policies.create(
                "acme", {"name": "x", "ruleType": "cooldown", "scope": "offer"}
            ),
            ValidationError,
            "scopeId",
        ),
        (
            lambda s: s.categories.create(
                "acme",
                {
                    "name": "x",
                    "customFields": [{"name": "f", "type": "computed", "formula": "1 +"}],
                },
            ),
            ValidationError,
            "customFields.0.formula",
        ),
    ],
)
def test_bad_input_raises_named_errors_and_changes_nothing(store, call, error, field) -> None:
    before = table_dump(store)
    with pytest.raises(error) as err:
        call(store)
    assert err.value.details and err.value.details[0]["field"] == field, err.value.details
    assert table_dump(store) == before


def test_duplicate_names_conflict_and_change_nothing(store: Store) -> None:
    store.offers.create("acme", {"name": "Same"})
    store.offers.create("globex", {"name": "Same"})  # unique per tenant only
    before = table_dump(store)
    with pytest.raises(ConflictError) as err:
        store.offers.create("acme", {"name": "Same"})
    assert err.value.field == "name"
    assert table_dump(store) == before


def test_name_of_a_deleted_row_can_be_reused(store: Store) -> None:
    first = store.offers.create("acme", {"name": "Reuse"})
    store.offers.delete("acme", first["id"])
    assert store.offers.create("acme", {"name": "Reuse"})["id"] != first["id"]


def test_update_is_validated_like_create(store: Store) -> None:
    offer = store.offers.create("acme", {"name": "A"})
    with pytest.raises(ValidationError) as err:
        store.offers.update("acme", offer["id"], {"priority": 500})
    assert err.value.field == "priority"
    assert store.offers.get("acme", offer["id"]) == offer


def test_stale_version_conflicts(store: Store) -> None:
    flow = store.decision_flows.create("acme", {"key": "f", "name": "F"})
    store.decision_flows.update("acme", flow["id"], {"name": "G"}, expected_version=1)
    with pytest.raises(ConflictError) as err:
        store.decision_flows.update("acme", flow["id"], {"name": "H"}, expected_version=1)
    assert err.value.field == "rowVersion"


def test_deleting_an_offer_soft_deletes_its_creatives(store: Store) -> None:
    creative = seed_entity(store, "acme", "creatives")
    store.offers.delete("acme", creative["offerId"])
    gone = store.creatives.get("acme", creative["id"], include_deleted=True)
    assert gone["deletedAt"] is not None and gone["version"] == 2


def test_system_outcome_types_are_seeded_per_tenant(store: Store) -> None:
    keys = {d["key"] for d in store.outcome_types.list("acme", limit=100).data}
    assert {"impression", "click", "conversion", "dismiss", "complaint"} <= keys
    assert len(keys) == 10
