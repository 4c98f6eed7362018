from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "nextbest.duckdb", pepper="test-pepper")
    s.tenants.create("acme")
    s.tenants.create("globex")
    yield s
    s.close()


def seed_entity(store: Store, tenant: str, entity: str, n: int = 0) -> dict[str, Any]:
    """Create one valid document of ``entity`` (and whatever it references) for ``tenant``."""
    suffix = f"{entity}-{n}"
    if entity == "categories":
        return store.categories.create(tenant, {"name": f"Cat {suffix}"})
    if entity == "sub_categories":
        cat = seed_entity(store, tenant, "categories", n)
        return store.sub_categories.create(
            tenant, {"name": f"Sub {suffix}", "categoryId": cat["id"]}
        )
    if entity == "offers":
        return store.offers.create(tenant, {"name": f"Offer {suffix}", "priority": 60})
    if entity == "channels":
        return store.channels.create(tenant, {"name": f"Channel {suffix}", "channelType": "web"})
    if entity == "placements":
        ch = seed_entity(store, tenant, "channels", n)
        return store.placements.create(tenant, {"name": f"Slot {suffix}", "channelId": ch["id"]})
    if entity == "creatives":
        offer = seed_entity(store, tenant, "offers", n)
        ch = seed_entity(store, tenant, "channels", n)
        return store.creatives.create(
            tenant, {"name": f"Creative {suffix}", "offerId": offer["id"], "channelId": ch["id"]}
        )
    if entity == "outcome_types":
        return store.outcome_types.create(
            tenant, {"key": f"custom_{n}", "name": f"Custom {n}", "classification": "positive"}
        )
    if entity == "qualification_rules":
        return store.qualification_rules.create(
            tenant,
            {
                "name": f"Rule {suffix}",
                "ruleType": "attribute_condition",
                "config": {"attribute": "customer.age", "operator": "gte", "value": 18},
            },
        )
    if entity == "contact_policies":
        return store.contact_policies.create(
            tenant,
            {
                "name": f"Policy {suffix}",
                "scope": "global",
                "ruleType": "frequency_cap",
                "config": {"maxPerDay": 3},
            },
        )
    if entity == "decision_flows":
        return store.decision_flows.create(tenant, {"key": f"flow-{n}", "name": f"Flow {suffix}"})
    if entity == "flow_routes":
        flow = seed_entity(store, tenant, "decision_flows", n)
        return store.flow_routes.create(tenant, {"decisionFlowId": flow["id"]})
    if entity == "behavioral_metrics":
        return store.behavioral_metrics.create(
            tenant,
            {
                "name": f"clicks_{n}",
                "aggregateFunction": "count",
                "sourceField": "click",
                "windowDays": 7,
            },
        )
    if entity == "experiments":
        return store.experiments.create(
            tenant,
            {
                "key": f"exp-{n}",
                "name": f"Experiment {suffix}",
                "variants": [
                    {"key": "control", "trafficPercent": 50, "isControl": True},
                    {"key": "variant_a", "trafficPercent": 50},
                ],
            },
        )
    raise AssertionError(entity)


def update_for(entity: str) -> dict[str, Any]:
    return {
        "outcome_types": {"name": "Renamed"},
        "flow_routes": {"priority": 5},
    }.get(entity, {"description": "changed"})
