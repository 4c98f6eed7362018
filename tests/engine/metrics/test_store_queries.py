"""The two store modules this package owns: ``engine/store/metric_values.py`` and
``engine/store/interaction_queries.py`` (kept here, beside the metrics they serve)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.errors import NotFoundError, ValidationError
from engine.store import Store
from engine.store.interaction_queries import interaction_history
from engine.store.metric_values import (
    latest_as_of,
    read_metric_values,
    replace_metric_values,
    value_counts,
)
from tests.engine.metrics.conftest import AS_OF, DAY, event


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "metrics.duckdb", pepper="p")
    s.tenants.create("acme")
    s.tenants.create("globex")
    yield s
    s.close()


def values(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["metric", "customer_id", "group_key", "value"],
                        orient="row")


def test_replace_is_per_tenant_and_as_of(store: Store) -> None:
    first = values(("clicks", "c1", None, 2.0), ("ctr", "c1", "offerId=o", None))
    assert replace_metric_values(store, "acme", as_of=AS_OF, values=first) == 2
    replace_metric_values(store.db, "globex", as_of=AS_OF, values=values(("x", "c9", None, 1.0)))
    later = AS_OF + DAY
    replace_metric_values(store, "acme", as_of=later, values=values(("clicks", "c1", None, 3.0)))
    assert latest_as_of(store, "acme") == later.replace(tzinfo=None)
    assert read_metric_values(store, "acme")["value"].to_list() == [3.0]
    old = read_metric_values(store, "acme", as_of=AS_OF).sort("metric")
    assert_frame_equal(old, first.sort("metric"))
    # replacing the same snapshot again does not duplicate
    replace_metric_values(store, "acme", as_of=AS_OF, values=first)
    assert value_counts(store, "acme", as_of=AS_OF) == {"clicks": 1, "ctr": 1}
    assert read_metric_values(store, "acme", as_of=AS_OF, customer_ids=["c2"]).height == 0
    assert read_metric_values(store, "acme", as_of=AS_OF, metrics=["ctr"]).height == 1
    assert value_counts(store, "globex") == {"x": 1}
    # prune_older drops the older snapshots in the same transaction
    replace_metric_values(store, "acme", as_of=later, values=values(), prune_older=True)
    assert store.db.cursor().execute(
        "SELECT count(*) FROM metric_values WHERE tenant_id = 'acme'").fetchall() == [(0,)]


def test_metric_values_errors(store: Store) -> None:
    with pytest.raises(NotFoundError):
        replace_metric_values(store, "nope", as_of=AS_OF, values=values())
    with pytest.raises(ValidationError):
        replace_metric_values(store, "acme", as_of=AS_OF, values=pl.DataFrame({"metric": ["m"]}))
    assert read_metric_values(store, "acme").height == 0
    assert value_counts(store, "acme") == {}


@pytest.fixture
def logged(store: Store) -> Store:
    ch = store.channels.create("acme", {"id": "ch_web", "name": "Web", "channelType": "web"})
    off = store.offers.create("acme", {"id": "off_a", "name": "Offer A", "status": "active"})
    store.creatives.create("acme", {"id": "cr_a", "name": "Creative A", "offerId": off["id"],
                                    "channelId": ch["id"]})
    rows = []
    for i in range(7):
        r = event("c1" if i % 3 else "c2", ["impression", "click", "dismiss"][i % 3],
                  AS_OF - timedelta(hours=10 - i), creative="cr_a")
        rows.append({**r, "id": f"int_{i:03d}", "context": f'{{"k": {i}}}' if i == 6 else None})
    rows.append({**event("c1", "recommendation", AS_OF, creative="cr_a"), "id": "int_007"})
    store.interactions.append("acme", pl.DataFrame(rows, infer_schema_length=None))
    return store


def test_interaction_history_pages_newest_first(logged: Store) -> None:
    page = interaction_history(logged, "acme", limit=3)
    assert [r["id"] for r in page.data] == ["int_007", "int_006", "int_005"]
    assert (page.total, page.has_more, page.next_cursor) == (8, True, "int_005")
    seen = [r["id"] for r in page.data]
    while page.has_more:
        page = interaction_history(logged, "acme", limit=3, cursor=page.next_cursor)
        seen += [r["id"] for r in page.data]
    assert seen == [f"int_{i:03d}" for i in range(7, -1, -1)]
    row = interaction_history(logged, "acme", limit=2).data[1]
    assert row["context"] == {"k": 6} and row["interactionType"] == "impression"
    assert row["offer"] == {"id": "off_a", "name": "Offer A", "status": "active"}
    assert row["creative"] == {"id": "cr_a", "name": "Creative A",
                               "channel": {"id": "ch_web", "name": "Web"}}
    assert row["timestamp"].endswith("Z") and row["tenantId"] == "acme"


def test_interaction_history_filters(logged: Store) -> None:
    def ids(**kw) -> list[str]:
        return [r["id"] for r in interaction_history(logged, "acme", **kw).data]

    assert ids(customer_id="c2") == ["int_006", "int_003", "int_000"]
    assert ids(type="click") == ["int_004", "int_001"]
    assert ids(type="impression") == ["int_006", "int_003", "int_000"]
    assert ids(type="response") == ["int_005", "int_004", "int_002", "int_001"]
    assert ids(type="recommendation") == ["int_007"]
    assert ids(action_id="off_a", treatment_id="cr_a", customer_id="c1", type="dismiss") == [
        "int_005", "int_002"]
    assert ids(offer_id="off_x") == []
    assert interaction_history(logged, "globex").total == 0
    rec = interaction_history(logged, "acme", type="recommendation").data[0]
    assert rec["interactionType"] == "recommendation" and rec["outcomeTypeKey"] is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
     ({"offer_id": "a", "action_id": "b"}, "offerId"),
     ({"creative_id": "a", "treatment_id": "b"}, "creativeId")],
)
def test_interaction_history_rejects_bad_input(logged: Store, kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        interaction_history(logged, "acme", **kwargs)
    assert exc.value.field == field


def test_interaction_history_unknown_tenant(logged: Store) -> None:
    with pytest.raises(NotFoundError):
        interaction_history(logged, "nope")
