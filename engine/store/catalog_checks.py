"""Catalog checks that need more than one document: store validators ``(tenant_id, doc)``.

The document models check each field; these check what a model cannot see alone:

- qualification rules / contact policies: ``config`` against its ``ruleType``
  (``engine.catalog.rule_configs``), and that ``scopeId`` / ``scopes[].scopeId`` and ids in
  the config (``offerIds``, ``categoryIds``) name live entities of the same tenant;
- creatives and flow routes: the placement belongs to the given channel;
- offers: the sub-category belongs to the offer's category;
- decision flows: ``draftConfig`` and every published version's config pass the engine's
  flow validation (errors name the node id and field);
- every entity: integers fit in 64 bits (larger ones cannot be stored as JSON).

``catalog_validators(db)`` returns them by table; ``Store`` registers them so every writer
gets them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from engine.catalog.rule_configs import config_references, validate_rule_config
from engine.errors import ValidationError
from engine.flow.publish import check_published_versions, validate_draft_config
from engine.store._db import Database
from engine.store._entities import ENTITIES

Validator = Callable[[str, dict[str, Any]], None]

# rule/policy scope -> table its scopeId names (global and segment name no entity)
SCOPE_TABLES = {
    "category": "categories",
    "subcategory": "sub_categories",
    "offer": "offers",
    "creative": "creatives",
    "channel": "channels",
    "placement": "placements",
}
INT_MIN, INT_MAX = -(2**63), 2**64 - 1


class CatalogCheck:
    """A named store validator (the name shows in reprs and tracebacks)."""

    def __init__(self, name: str, fn: Validator) -> None:
        self.name = name
        self._fn = fn

    def __call__(self, tenant_id: str, doc: dict[str, Any]) -> None:
        self._fn(tenant_id, doc)

    def __repr__(self) -> str:
        return f"CatalogCheck({self.name})"


def _json_safe(tenant_id: str, doc: dict[str, Any]) -> None:
    def walk(value: Any, path: str) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            raise ValidationError(f"{path}: integer out of range (at most 64 bits)", field=path)
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}.{i}" if path else str(i))

    walk(doc, "")


def catalog_validators(db: Database) -> dict[str, tuple[CatalogCheck, ...]]:
    """The cross-document checks, by table, reading ``db`` (inside the write transaction
    when one is open on this thread)."""

    def live(tenant_id: str, table: str, entity_id: str) -> dict[str, Any] | None:
        rows = (
            db.cursor()
            .execute(
                f"SELECT doc FROM {table} WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL",
                [tenant_id, entity_id],
            )
            .fetchall()
        )
        return orjson.loads(rows[0][0]) if rows else None

    def missing(field: str, table: str, ref: str) -> ValidationError:
        return ValidationError(
            f"{field}: {ENTITIES[table].label} {ref!r} does not exist", field=field
        )

    def rule(entity: str) -> Validator:
        def check(tenant_id: str, doc: dict[str, Any]) -> None:
            rule_type, config = doc.get("ruleType", ""), doc.get("config") or {}
            validate_rule_config(entity, rule_type, config)
            refs = [("scopeId", doc.get("scope"), doc.get("scopeId"))] + [
                (f"scopes.{i}.scopeId", a.get("scope"), a.get("scopeId"))
                for i, a in enumerate(doc.get("scopes") or [])
            ]
            for field, scope, ref in refs:
                table = SCOPE_TABLES.get(scope or "")
                if table and ref and live(tenant_id, table, ref) is None:
                    raise missing(field, table, ref)
            for field, table, ref in config_references(entity, rule_type, config):
                if live(tenant_id, table, ref) is None:
                    raise missing(field, table, ref)

        return check

    def placement_on_channel(tenant_id: str, doc: dict[str, Any]) -> None:
        placement_id, channel_id = doc.get("placementId"), doc.get("channelId")
        if not placement_id or not channel_id:
            return
        placement = live(tenant_id, "placements", placement_id)
        if placement is not None and placement.get("channelId") != channel_id:
            raise ValidationError(
                f"placementId: placement {placement_id!r} belongs to channel "
                f"{placement.get('channelId')!r}, not {channel_id!r}",
                field="placementId",
            )

    def sub_category_in_category(tenant_id: str, doc: dict[str, Any]) -> None:
        sub_id, category_id = doc.get("subCategoryId"), doc.get("categoryId")
        if not sub_id or not category_id:
            return
        sub = live(tenant_id, "sub_categories", sub_id)
        if sub is not None and sub.get("categoryId") != category_id:
            raise ValidationError(
                f"subCategoryId: sub-category {sub_id!r} belongs to category "
                f"{sub.get('categoryId')!r}, not {category_id!r}",
                field="subCategoryId",
            )

    def flow(tenant_id: str, doc: dict[str, Any]) -> None:
        validate_draft_config(doc.get("draftConfig"))
        check_published_versions(doc.get("publishedVersions") or [])

    checks: dict[str, list[CatalogCheck]] = {t: [] for t in ENTITIES}
    checks["qualification_rules"].append(CatalogCheck("rule-config", rule("qualification_rules")))
    checks["contact_policies"].append(CatalogCheck("policy-config", rule("contact_policies")))
    checks["creatives"].append(CatalogCheck("placement-on-channel", placement_on_channel))
    checks["flow_routes"].append(CatalogCheck("placement-on-channel", placement_on_channel))
    checks["offers"].append(CatalogCheck("sub-category-in-category", sub_category_in_category))
    checks["decision_flows"].append(CatalogCheck("flow-config", flow))
    for table in checks:
        checks[table].append(CatalogCheck("json-safe", _json_safe))
    return {table: tuple(v) for table, v in checks.items()}
