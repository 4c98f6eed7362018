"""What the store knows about each catalog entity: id prefix, unique field, references."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EntitySpec:
    table: str
    prefix: str
    label: str  # singular, for messages
    unique: str = "name"  # document field unique among a tenant's non-deleted rows
    # document field -> referenced table (must exist, same tenant, not deleted)
    refs: dict[str, str] = field(default_factory=dict)
    # tables whose rows referencing this entity are soft-deleted with it: (table, field)
    cascade: tuple[tuple[str, str], ...] = ()


ENTITIES: dict[str, EntitySpec] = {
    spec.table: spec
    for spec in (
        EntitySpec("categories", "cat", "category"),
        EntitySpec("sub_categories", "sub", "sub-category", refs={"categoryId": "categories"}),
        EntitySpec(
            "offers",
            "off",
            "offer",
            refs={"categoryId": "categories", "subCategoryId": "sub_categories"},
            cascade=(("creatives", "offerId"),),
        ),
        EntitySpec("channels", "ch", "channel", cascade=(("placements", "channelId"),)),
        EntitySpec("placements", "pl", "placement", refs={"channelId": "channels"}),
        EntitySpec(
            "creatives",
            "cr",
            "creative",
            refs={"offerId": "offers", "channelId": "channels", "placementId": "placements"},
        ),
        EntitySpec("outcome_types", "ot", "outcome type", unique="key"),
        EntitySpec("qualification_rules", "qr", "qualification rule"),
        EntitySpec("contact_policies", "cp", "contact policy"),
        EntitySpec("decision_flows", "flow", "decision flow", unique="key"),
        EntitySpec("behavioral_metrics", "met", "behavioral metric"),
        EntitySpec("experiments", "exp", "experiment", unique="key"),
        EntitySpec(
            "flow_routes",
            "route",
            "flow route",
            unique="",
            refs={
                "decisionFlowId": "decision_flows",
                "channelId": "channels",
                "placementId": "placements",
            },
        ),
    )
}
