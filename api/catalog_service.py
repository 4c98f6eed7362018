"""Catalog CRUD over HTTP: the store call each route makes, plus the API's own rules.

Blocking (DuckDB): routes run these methods in a worker thread. What is added here on top
of the store's validation:

- read-only fields in bodies are ignored (``version``, timestamps, ``tenantId``, computed
  ``decisioningStage``), a body ``id`` on update must match the path, and the expected
  version comes from a body ``rowVersion`` or an ``If-Match`` header (stale -> 409);
- outcome types: the system types cannot be changed or deleted (403 FORBIDDEN), a custom
  type's ``key`` (its id) cannot change;
- offers: a mandatory offer needs ``mandatoryReason`` and a future ``mandatoryExpiresAt``;
- decision flows go through ``engine.flow.publish`` (default flow, read-only versions);
- ``POST /flow-routes`` is an upsert on (channelId, placementId), in one transaction;
- qualification rules carry ``decisioningStage`` and can be listed by stage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.errors import ForbiddenError, ValidationError
from engine.flow import publish
from engine.flow.nodes.qualify import DEFAULT_STAGES, STAGE_ALIASES
from engine.store import Store
from engine.store.catalog_repo import MAX_PAGE, CatalogRepo
from engine.store.catalog_tx import catalog_transaction

IGNORED = ("version", "createdAt", "updatedAt", "deletedAt", "decisioningStage", "rowVersion")


def decisioning_stage(rule: dict[str, Any]) -> str:
    stage = rule.get("stage") or DEFAULT_STAGES.get(rule.get("ruleType", ""), "eligibility")
    return STAGE_ALIASES.get(stage, stage)


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: 3``, ``"3"`` or ``W/"3"`` -> 3."""
    if value is None:
        return None
    token = value.strip().removeprefix("W/").strip('"')
    if not (token.isascii() and token.isdigit()) or len(token) > 12:
        raise ValidationError(
            'If-Match must be the version you read, e.g. If-Match: "3"', field="If-Match"
        )
    return int(token)


class CatalogService:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.repos = store.catalog

    # -- reads ---------------------------------------------------------------------------
    def get(
        self, table: str, tenant_id: str, entity_id: str, *, include_deleted: bool = False
    ) -> dict[str, Any]:
        doc = self.repos[table].get(tenant_id, entity_id, include_deleted=include_deleted)
        return record(table, tenant_id, doc)

    def list(
        self,
        table: str,
        tenant_id: str,
        *,
        limit: int,
        cursor: str | None,
        include_deleted: bool,
        stage: str | None = None,
    ) -> dict[str, Any]:
        repo = self.repos[table]
        if stage is None:
            page = repo.list(
                tenant_id, limit=limit, cursor=cursor, include_deleted=include_deleted
            ).to_dict()
        else:
            rows = [
                r
                for r in self._all(repo, tenant_id, include_deleted)
                if decisioning_stage(r) == stage
            ]
            after = [r for r in rows if cursor is None or r["id"] < cursor][: limit + 1]
            more = len(after) > limit
            page = {
                "data": after[:limit],
                "pagination": {
                    "total": len(rows),
                    "limit": limit,
                    "hasMore": more,
                    "nextCursor": after[limit - 1]["id"] if more else None,
                },
            }
        page["data"] = [record(table, tenant_id, d) for d in page["data"]]
        return page

    @staticmethod
    def _all(repo: CatalogRepo, tenant_id: str, include_deleted: bool) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:  # id desc, like every list
            page = repo.list(
                tenant_id, limit=MAX_PAGE, cursor=cursor, include_deleted=include_deleted
            )
            rows.extend(page.data)
            if not page.has_more:
                return rows
            cursor = page.next_cursor

    # -- writes --------------------------------------------------------------------------
    def create(
        self, table: str, tenant_id: str, body: dict[str, Any], *, now: datetime
    ) -> dict[str, Any]:
        data = self._clean(tenant_id, body)
        if table == "offers":
            _check_mandatory(data, now)
        if table == "decision_flows":
            doc = publish.create_flow(self.store, tenant_id, data)
        elif table == "flow_routes":
            doc = self._upsert_route(tenant_id, data)
        else:
            doc = self.repos[table].create(tenant_id, data)
        return record(table, tenant_id, doc)

    def update(
        self,
        table: str,
        tenant_id: str,
        entity_id: str,
        body: dict[str, Any],
        *,
        replace: bool,
        if_match: str | None,
        now: datetime,
    ) -> dict[str, Any]:
        expected = parse_if_match(if_match)
        if body.get("rowVersion") is not None:
            row_version = body["rowVersion"]
            if not isinstance(row_version, int) or isinstance(row_version, bool):
                raise ValidationError("rowVersion must be an integer", field="rowVersion")
            expected = row_version
        data = self._clean(tenant_id, body, entity_id=entity_id)
        repo = self.repos[table]
        if table == "outcome_types":
            current = repo.get(tenant_id, entity_id)
            _check_not_system(current, "modified")
            if data.get("key", current["key"]) != current["key"]:
                raise ValidationError(
                    "key cannot be changed: it is the outcome type's id", field="key"
                )
        if table == "offers" and (
            replace or {"mandatory", "mandatoryReason", "mandatoryExpiresAt"} & set(data)
        ):
            view = data if replace else {**repo.get(tenant_id, entity_id), **data}
            _check_mandatory(view, now)
        if table == "decision_flows":
            doc = publish.update_flow(
                self.store, tenant_id, entity_id, data, replace=replace, expected_version=expected
            )
        else:
            doc = repo.update(
                tenant_id, entity_id, data, replace=replace, expected_version=expected
            )
        return record(table, tenant_id, doc)

    def delete(self, table: str, tenant_id: str, entity_id: str) -> None:
        repo = self.repos[table]
        if table == "outcome_types":
            _check_not_system(repo.get(tenant_id, entity_id), "deleted")
        repo.delete(tenant_id, entity_id)

    def _upsert_route(self, tenant_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with catalog_transaction(self.store, tenant_id) as tx:
            key = (data.get("channelId"), data.get("placementId"))
            same = next(
                (
                    r
                    for r in tx.active("flow_routes")
                    if (r.get("channelId"), r.get("placementId")) == key
                ),
                None,
            )
            if same is None:
                return tx.create("flow_routes", data)
            return tx.update("flow_routes", same["id"], data, replace=True)

    # -- shapes --------------------------------------------------------------------------
    @staticmethod
    def _clean(
        tenant_id: str, body: dict[str, Any], *, entity_id: str | None = None
    ) -> dict[str, Any]:
        tenant = body.get("tenantId")
        if tenant is not None and tenant != tenant_id:
            raise ValidationError("tenantId must be your own tenant (or omitted)", field="tenantId")
        if entity_id is not None and body.get("id", entity_id) != entity_id:
            raise ValidationError(
                f"id in the body ({body['id']!r}) does not match the path ({entity_id!r})",
                field="id",
            )
        return {k: v for k, v in body.items() if k not in (*IGNORED, "tenantId")}


def record(table: str, tenant_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API returns it."""
    out = {"id": doc["id"], "tenantId": tenant_id, **doc}
    if table == "decision_flows":
        out["rowVersion"] = doc["version"]
    elif table == "qualification_rules":
        out["decisioningStage"] = decisioning_stage(doc)
    return out


def _check_not_system(outcome_type: dict[str, Any], action: str) -> None:
    if outcome_type.get("isSystem"):
        raise ForbiddenError(
            f"outcome type {outcome_type['key']!r} is a system type and cannot be {action}; "
            "create a custom outcome type instead",
            field="key",
        )


def _check_mandatory(offer: dict[str, Any], now: datetime) -> None:
    """Mandatory offers need a reason and an expiry in the future (spec §8.2)."""
    if offer.get("mandatory") is not True:
        return
    if not offer.get("mandatoryReason"):
        raise ValidationError(
            "mandatoryReason is required when mandatory is true", field="mandatoryReason"
        )
    raw = offer.get("mandatoryExpiresAt")
    if not raw:
        raise ValidationError(
            "mandatoryExpiresAt is required when mandatory is true", field="mandatoryExpiresAt"
        )
    try:
        expires = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return  # the offer model reports the malformed date
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if expires <= now:
        raise ValidationError(
            f"mandatoryExpiresAt must be in the future (got {raw})", field="mandatoryExpiresAt"
        )
