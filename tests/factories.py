"""Small hand-made catalogs, customers and histories for engine tests.

Every document goes through its catalog model (``ENTITY_MODELS[...].model_validate(...).dump()``)
exactly as the store and the sample pack do, then through ``build_catalog``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from engine.catalog import HISTORY_SCHEMA, SYSTEM_OUTCOME_TYPES, Catalog, build_catalog
from engine.catalog.documents import ENTITY_MODELS

AS_OF = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)  # a Friday


def offer(
    oid: str,
    *,
    priority: int = 50,
    category: str | None = "cat_a",
    status: str = "active",
    mandatory: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    doc = {
        "id": oid,
        "name": extra.pop("name", f"Offer {oid}"),
        "priority": priority,
        "status": status,
        "mandatory": mandatory,
        **extra,
    }
    if category is not None:
        doc["categoryId"] = category
    return doc


def creative(
    cid: str,
    offer_id: str,
    channel_id: str = "ch_email",
    *,
    placement_id: str | None = None,
    weight: int = 100,
    status: str = "active",
    **extra: Any,
) -> dict[str, Any]:
    doc = {
        "id": cid,
        "name": f"Creative {cid}",
        "offerId": offer_id,
        "channelId": channel_id,
        "weight": weight,
        "status": status,
        **extra,
    }
    if placement_id is not None:
        doc["placementId"] = placement_id
    return doc


def channel(chid: str, channel_type: str = "email", *, status: str = "active") -> dict[str, Any]:
    return {"id": chid, "name": f"Channel {chid}", "channelType": channel_type, "status": status}


def placement(pid: str, channel_id: str, *, slot_type: str = "default", max_slots: int = 1) -> dict:
    return {
        "id": pid,
        "name": f"Placement {pid}",
        "channelId": channel_id,
        "slotType": slot_type,
        "maxSlots": max_slots,
    }


def category(cat_id: str, name: str | None = None, *, fields: Sequence[dict] = ()) -> dict:
    return {"id": cat_id, "name": name or cat_id.upper(), "customFields": list(fields)}


def rule(
    rid: str,
    rule_type: str,
    config: Mapping[str, Any],
    *,
    stage: str | None = None,
    scope: str = "global",
    scope_id: str | None = None,
    priority: int = 50,
    scopes: Sequence[Mapping[str, Any]] = (),
    status: str = "active",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": rid,
        "name": f"Rule {rid}",
        "ruleType": rule_type,
        "config": dict(config),
        "scope": scope,
        "priority": priority,
        "status": status,
        "scopes": list(scopes),
    }
    if stage:
        doc["stage"] = stage
    if scope_id:
        doc["scopeId"] = scope_id
    return doc


def policy(
    pid: str,
    rule_type: str,
    config: Mapping[str, Any] | None = None,
    *,
    scope: str = "global",
    scope_id: str | None = None,
    priority: int = 50,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": pid,
        "name": f"Policy {pid}",
        "ruleType": rule_type,
        "config": dict(config or {}),
        "scope": scope,
        "priority": priority,
    }
    if scope_id:
        doc["scopeId"] = scope_id
    return doc


def node(node_id: str, node_type: str | None = None, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type or node_id, "config": config}


def flow_config(*nodes: dict[str, Any], flow_config: Mapping[str, Any] | None = None) -> dict:
    """A V2 config; an inventory node is prepended when missing."""
    items = list(nodes)
    if not items or items[0]["type"] != "inventory":
        items.insert(0, node("inventory"))
    return {"version": 2, "nodes": items, "flowConfig": dict(flow_config or {})}


def standard_nodes(**score: Any) -> list[dict[str, Any]]:
    """inventory -> match (any, creative required) -> enrich -> qualify -> contact -> score ->
    rank -> response."""
    return [
        node("inventory"),
        node("match_creatives", placementMatchMode="any", requireCreative=True),
        node("enrich"),
        node("qualify"),
        node("contact_policy"),
        node("score", **(score or {"method": "priority_weighted"})),
        node("rank"),
        node("response"),
    ]


def flow_doc(key: str, config: Mapping[str, Any], *, status: str = "active") -> dict[str, Any]:
    return {
        "key": key,
        "name": f"Flow {key}",
        "status": status,
        "draftConfig": dict(config),
        "publishedVersions": [
            {"version": 1, "config": dict(config), "publishedAt": "2026-01-01T00:00:00Z"}
        ],
    }


def outcome_types() -> list[dict[str, Any]]:
    return [
        {"key": k, "name": k, "classification": cls, "category": cat, "isSystem": True}
        for k, cls, cat in SYSTEM_OUTCOME_TYPES
    ]


def _validated(entity: str, docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    model = ENTITY_MODELS[entity]
    return [model.model_validate(dict(d)).dump() for d in docs]


def make_catalog(
    *,
    offers: Sequence[dict[str, Any]],
    creatives: Sequence[dict[str, Any]],
    channels: Sequence[dict[str, Any]] | None = None,
    placements: Sequence[dict[str, Any]] = (),
    categories: Sequence[dict[str, Any]] | None = None,
    rules: Sequence[dict[str, Any]] = (),
    policies: Sequence[dict[str, Any]] = (),
    flows: Sequence[dict[str, Any]] = (),
    version: int = 1,
) -> Catalog:
    if channels is None:
        channels = [channel("ch_email", "email"), channel("ch_web", "web")]
    if categories is None:
        cats = sorted({o["categoryId"] for o in offers if o.get("categoryId")})
        categories = [category(cid) for cid in cats]
    documents = {
        "categories": _validated("categories", categories),
        "channels": _validated("channels", channels),
        "placements": _validated("placements", placements),
        "offers": _validated("offers", offers),
        "creatives": _validated("creatives", creatives),
        "outcome_types": _validated("outcome_types", outcome_types()),
        "qualification_rules": _validated("qualification_rules", rules),
        "contact_policies": _validated("contact_policies", policies),
        "decision_flows": _validated("decision_flows", flows),
    }
    return build_catalog("t_test", version, documents)


def simple_catalog(
    *,
    rules: Sequence[dict[str, Any]] = (),
    policies: Sequence[dict[str, Any]] = (),
    extra_offers: Sequence[dict[str, Any]] = (),
    extra_creatives: Sequence[dict[str, Any]] = (),
) -> Catalog:
    """Four offers in two categories, one email creative each, one web creative for o1/o2."""
    offers = [
        offer("o1", priority=80, category="cat_a"),
        offer("o2", priority=70, category="cat_a"),
        offer("o3", priority=60, category="cat_b"),
        offer("o4", priority=50, category="cat_b"),
        *extra_offers,
    ]
    creatives = [
        creative("c1e", "o1"),
        creative("c2e", "o2"),
        creative("c3e", "o3"),
        creative("c4e", "o4"),
        creative("c1w", "o1", "ch_web"),
        creative("c2w", "o2", "ch_web", weight=50),
        *extra_creatives,
    ]
    return make_catalog(offers=offers, creatives=creatives, rules=rules, policies=policies)


def customers(*rows: Mapping[str, Any]) -> pl.DataFrame:
    """Rows of ``{"customer_id": ..., attr: value}``; attributes become ``customer.<attr>``."""
    records = [
        {k if k == "customer_id" or "." in k else f"customer.{k}": v for k, v in r.items()}
        for r in rows
    ]
    if not records:
        return pl.DataFrame(schema={"customer_id": pl.String()})
    return pl.DataFrame(records, strict=False)


def interaction(
    customer_id: str,
    offer_id: str | None,
    outcome: str = "impression",
    *,
    at: datetime | None = None,
    hours_ago: float | None = None,
    creative_id: str | None = None,
    channel_id: str | None = "ch_email",
    category_id: str | None = None,
    classification: str | None = None,
    direction: str | None = None,
) -> dict[str, Any]:
    ts = at or AS_OF - timedelta(hours=hours_ago if hours_ago is not None else 1)
    cls = classification or dict((k, c) for k, c, _ in SYSTEM_OUTCOME_TYPES).get(outcome)
    return {
        "customer_id": customer_id,
        "offer_id": offer_id,
        "creative_id": creative_id,
        "channel_id": channel_id,
        "placement_id": None,
        "category_id": category_id,
        "outcome": outcome,
        "classification": cls,
        "direction": direction or ("outbound" if outcome == "impression" else "inbound"),
        "ts": ts,
        "value": None,
    }


def history(*rows: Mapping[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=HISTORY_SCHEMA)


def decide_one(
    catalog: Catalog,
    flow: Any,
    *,
    customer: Mapping[str, Any] | None = None,
    events: Sequence[Mapping[str, Any]] = (),
    trace: bool = False,
    as_of: datetime = AS_OF,
    customer_id: str = "u1",
    **request: Any,
) -> Any:
    """Decide for one customer ``u1`` (attributes ``customer``; None = unknown customer)."""
    from engine.decide import DecisionRequest, decide

    rows = [] if customer is None else [{"customer_id": customer_id, **customer}]
    return decide(
        catalog,
        customers(*rows),
        history(*events),
        DecisionRequest(customer_id=customer_id, **request),
        as_of=as_of,
        flow=flow,
        trace=trace,
    )


def offer_ids(result: Any, request_index: int = 0) -> list[str]:
    """Offer ids of one request's decisions, in rank order."""
    return result.for_request(request_index).get_column("offer_id").to_list()
