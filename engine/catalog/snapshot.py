"""The decisioning catalog of one tenant as Polars frames.

``build_catalog`` turns validated catalog documents (see ``documents.py``) into the frames the
decision engine joins against. Column names follow the namespaces users write in filters and
formulas: ``offer.*``, ``creative.*``, ``channel.*``, ``placement.*``; an offer's custom
fields are bare names (``base_rate``), typed by their category's field definitions.

Frames hold every non-deleted entity whatever its status; the flow's nodes decide which
statuses take part (the inventory node's ``includeStatuses``; only active creatives).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import orjson
import polars as pl

UTC_US = pl.Datetime("us", "UTC")

OFFER_SCHEMA: dict[str, pl.DataType] = {
    "offer.id": pl.String(),
    "offer.name": pl.String(),
    "offer.status": pl.String(),
    "offer.categoryId": pl.String(),
    "offer.subCategoryId": pl.String(),
    "offer.category": pl.String(),
    "offer.priority": pl.Int64(),
    "offer.businessValue": pl.Float64(),
    "offer.margin": pl.Float64(),
    "offer.revenueValue": pl.Float64(),
    "offer.productType": pl.String(),
    "offer.tags": pl.List(pl.String()),
    "offer.mandatory": pl.Boolean(),
    "offer.startDate": UTC_US,
    "offer.endDate": UTC_US,
    "offer.remainingStock": pl.Int64(),
    "offer.capDaily": pl.Int64(),
    "offer.capWeekly": pl.Int64(),
    "offer.capMonthly": pl.Int64(),
    "offer.propensityThreshold": pl.Float64(),
}

CREATIVE_SCHEMA: dict[str, pl.DataType] = {
    "creative.id": pl.String(),
    "creative.name": pl.String(),
    "offer.id": pl.String(),
    "channel.id": pl.String(),
    "placement.id": pl.String(),
    "creative.status": pl.String(),
    "creative.templateType": pl.String(),
    "creative.content": pl.String(),  # JSON object of strings with {{var}} placeholders
    "creative.personalization": pl.String(),  # JSON list of {variable, source, fallback}
    "creative.weight": pl.Int64(),
    "creative.abTestVariant": pl.String(),
}

CHANNEL_SCHEMA: dict[str, pl.DataType] = {
    "channel.id": pl.String(),
    "channel.name": pl.String(),
    "channel.type": pl.String(),
    "channel.status": pl.String(),
    "channel.deliveryMode": pl.String(),
    "channel.impressionMode": pl.String(),
    "channel.couplingMode": pl.String(),
}

PLACEMENT_SCHEMA: dict[str, pl.DataType] = {
    "placement.id": pl.String(),
    "channel.id": pl.String(),
    "placement.name": pl.String(),
    "placement.slotType": pl.String(),
    "placement.maxSlots": pl.Int64(),
}

OUTCOME_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String(),
    "name": pl.String(),
    "classification": pl.String(),
    "category": pl.String(),
}

# The interaction history frame the engine receives (one row per logged interaction).
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "offer_id": pl.String(),
    "creative_id": pl.String(),
    "channel_id": pl.String(),
    "placement_id": pl.String(),
    "category_id": pl.String(),
    "outcome": pl.String(),  # outcome-type key, or "recommendation" for a decision row
    "classification": pl.String(),  # positive | negative | neutral | null
    "direction": pl.String(),  # inbound | outbound
    "ts": UTC_US,
    "value": pl.Float64(),
}

FIELD_DTYPES: dict[str, pl.DataType] = {
    "text": pl.String(),
    "select": pl.String(),
    "number": pl.Float64(),
    "boolean": pl.Boolean(),
    "date": UTC_US,
}


@dataclass(frozen=True)
class ComputedField:
    name: str
    formula: str
    output_type: str


@dataclass(frozen=True)
class Catalog:
    """One tenant's catalog at one version. Immutable; safe to share across threads."""

    tenant_id: str
    version: int
    offers: pl.DataFrame
    creatives: pl.DataFrame
    channels: pl.DataFrame
    placements: pl.DataFrame
    outcome_types: pl.DataFrame
    # category id -> computed fields (category's own, then the sub-category's)
    computed_fields: Mapping[str, tuple[ComputedField, ...]]
    qualification_rules: tuple[dict[str, Any], ...]
    contact_policies: tuple[dict[str, Any], ...]
    decision_flows: tuple[dict[str, Any], ...]
    flow_routes: tuple[dict[str, Any], ...]
    documents: Mapping[str, tuple[dict[str, Any], ...]] = field(repr=False)

    def flow_by_key(self, key: str) -> dict[str, Any] | None:
        return next((f for f in self.decision_flows if f["key"] == key), None)


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _by_priority(docs: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    ordered = sorted(docs, key=lambda d: d["id"])
    return tuple(sorted(ordered, key=lambda d: -int(d.get("priority", 50))))


def build_catalog(
    tenant_id: str, version: int, documents: Mapping[str, Sequence[dict[str, Any]]]
) -> Catalog:
    """Build frames from validated documents keyed by entity name (``offers``, ``creatives``…)."""

    def docs(name: str) -> list[dict[str, Any]]:
        return sorted(documents.get(name, ()), key=lambda d: d.get("id") or d.get("key"))

    categories = {c["id"]: c for c in docs("categories")}
    sub_categories = {s["id"]: s for s in docs("sub_categories")}

    field_types: dict[str, str] = {}
    computed: dict[str, tuple[ComputedField, ...]] = {}
    for cat in [*categories.values(), *sub_categories.values()]:
        for f in cat.get("customFields", []):
            if f["type"] != "computed":
                field_types.setdefault(f["name"], f["type"])
    for cat_id, cat in categories.items():
        fields = [f for f in cat.get("customFields", []) if f["type"] == "computed"]
        computed[cat_id] = tuple(
            ComputedField(f["name"], f["formula"], f.get("outputType", "number")) for f in fields
        )

    offer_rows = []
    for o in docs("offers"):
        caps = (o.get("frequencyCaps") or {}).get("perCustomer") or {}
        sched = o.get("schedule") or {}
        cat = categories.get(o.get("categoryId") or "")
        row = {
            "offer.id": o["id"],
            "offer.name": o["name"],
            "offer.status": o.get("status", "draft"),
            "offer.categoryId": o.get("categoryId"),
            "offer.subCategoryId": o.get("subCategoryId"),
            "offer.category": cat["name"] if cat else None,
            "offer.priority": o.get("priority", 50),
            "offer.businessValue": o.get("businessValue"),
            "offer.margin": o.get("margin"),
            "offer.revenueValue": o.get("revenueValue"),
            "offer.productType": o.get("productType"),
            "offer.tags": o.get("tags", []),
            "offer.mandatory": bool(o.get("mandatory", False)),
            "offer.startDate": _ts(sched.get("startDate")),
            "offer.endDate": _ts(sched.get("endDate")),
            "offer.remainingStock": (o.get("inventory") or {}).get("remainingStock"),
            "offer.capDaily": caps.get("daily"),
            "offer.capWeekly": caps.get("weekly"),
            "offer.capMonthly": caps.get("monthly"),
            "offer.propensityThreshold": o.get("propensityThreshold"),
        }
        values = o.get("customFields", {})
        for name in field_types:
            row[name] = values.get(name)
        offer_rows.append(row)
    offer_schema = dict(OFFER_SCHEMA)
    for name, ftype in field_types.items():
        if name not in offer_schema:
            offer_schema[name] = FIELD_DTYPES[ftype]
    offers = pl.DataFrame(
        [{k: _coerce(v, offer_schema[k]) for k, v in r.items()} for r in offer_rows],
        schema=offer_schema,
        orient="row" if not offer_rows else None,
    )

    creatives = pl.DataFrame(
        [
            {
                "creative.id": c["id"],
                "creative.name": c["name"],
                "offer.id": c["offerId"],
                "channel.id": c["channelId"],
                "placement.id": c.get("placementId"),
                "creative.status": c.get("status", "draft"),
                "creative.templateType": c.get("templateType", "email_html"),
                "creative.content": orjson.dumps(c.get("content", {})).decode(),
                "creative.personalization": orjson.dumps(c.get("personalization", [])).decode(),
                "creative.weight": c.get("weight", 100),
                "creative.abTestVariant": c.get("abTestVariant"),
            }
            for c in docs("creatives")
        ],
        schema=CREATIVE_SCHEMA,
    )
    channels = pl.DataFrame(
        [
            {
                "channel.id": c["id"],
                "channel.name": c["name"],
                "channel.type": c.get("channelType", "email"),
                "channel.status": c.get("status", "draft"),
                "channel.deliveryMode": c.get("deliveryMode", "api"),
                "channel.impressionMode": c.get("impressionMode", "explicit"),
                "channel.couplingMode": c.get("couplingMode", "partial"),
            }
            for c in docs("channels")
        ],
        schema=CHANNEL_SCHEMA,
    )
    placements = pl.DataFrame(
        [
            {
                "placement.id": p["id"],
                "channel.id": p["channelId"],
                "placement.name": p["name"],
                "placement.slotType": p.get("slotType", "default"),
                "placement.maxSlots": p.get("maxSlots", 1),
            }
            for p in docs("placements")
        ],
        schema=PLACEMENT_SCHEMA,
    )
    outcomes = pl.DataFrame(
        [
            {
                "key": t["key"],
                "name": t["name"],
                "classification": t["classification"],
                "category": t.get("category", "response"),
            }
            for t in docs("outcome_types")
        ],
        schema=OUTCOME_SCHEMA,
    )
    frozen_docs = {k: tuple(v) for k, v in documents.items()}
    return Catalog(
        tenant_id=tenant_id,
        version=version,
        offers=offers,
        creatives=creatives,
        channels=channels,
        placements=placements,
        outcome_types=outcomes,
        computed_fields=MappingProxyType(computed),
        qualification_rules=_by_priority(docs("qualification_rules")),
        contact_policies=_by_priority(docs("contact_policies")),
        decision_flows=tuple(docs("decision_flows")),
        flow_routes=_by_priority(docs("flow_routes")),
        documents=MappingProxyType(frozen_docs),
    )


def _coerce(value: Any, dtype: pl.DataType) -> Any:
    if value is None:
        return None
    if dtype == pl.Float64():
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if dtype == pl.String() and not isinstance(value, str):
        return str(value)
    if dtype == UTC_US:
        try:
            return _ts(value)
        except ValueError:
            return None
    return value
