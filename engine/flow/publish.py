"""Decision-flow lifecycle: drafts, immutable published versions, rollback, the default
flow and the Base NBA flow (spec §9.1, §9.4).

- A draft (``draftConfig``) is validated structurally on every save; an empty ``nodes``
  list is a valid (new) draft. ``publishedVersions`` is append-only: only ``publish`` and
  ``rollback`` add to it, and nothing rewrites an existing version.
- ``publish`` validates the draft, compiles it against the tenant's current catalog (so an
  unsupported node or a bad formula is a 400 now, not a failed recommend later) and appends
  version n+1 with the draft's config; a ``draft`` flow becomes ``active``.
- ``rollback`` appends version n+1 equal to version v (notes ``"Rollback to vN: "``),
  replaces the draft with it and sets the flow ``active``.
- ``isDefault``: setting it clears it on every other flow; a tenant's first flow is default.

Every write is one transaction (``catalog_transaction``). The clock is the caller's ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.errors import ConflictError, NextbestError, NotFoundError, ValidationError
from engine.flow.validate import BASE_FLOW_KEY, base_nba_flow, validate_flow_config

if TYPE_CHECKING:
    from engine.store.catalog_tx import CatalogTx
    from engine.store.store import Store

TABLE = "decision_flows"
_ATTEMPTS = 3


# -- pure checks ---------------------------------------------------------------------------
def _prefixed(exc: ValidationError, prefix: str) -> ValidationError:
    details = [
        {"field": f"{prefix}.{d['field']}", "message": d["message"]}
        for d in exc.details or [{"field": exc.field or "config", "message": exc.message}]
    ]
    first = details[0]
    return ValidationError(
        f"invalid decision flow: {first['field']}: {first['message']}", details=details
    )


def validate_draft_config(config: Any) -> None:
    """A saved draft: a V2 config whose nodes pass the engine's checks; ``nodes: []`` is a
    valid new draft. Errors name ``draftConfig.nodes[i]...`` and the node id."""
    if not isinstance(config, Mapping):
        raise ValidationError(
            "invalid decision flow: draftConfig must be an object", field="draftConfig"
        )
    if config.get("nodes") == [] and config.get("version") == 2:
        if not isinstance(config.get("flowConfig", {}), Mapping):
            raise ValidationError(
                "invalid decision flow: draftConfig.flowConfig must be an object",
                field="draftConfig.flowConfig",
            )
        return
    try:
        validate_flow_config(config)
    except ValidationError as exc:
        raise _prefixed(exc, "draftConfig") from None


def check_published_versions(versions: list[Mapping[str, Any]]) -> None:
    """Versions numbered in strictly increasing order, each config a runnable V2 config."""
    previous = 0
    for i, entry in enumerate(versions):
        number = int(entry["version"])
        if number <= previous:
            raise ValidationError(
                f"invalid decision flow: publishedVersions.{i}.version: versions must be "
                f"numbered in increasing order ({number} after {previous})",
                field=f"publishedVersions.{i}.version",
            )
        previous = number
        try:
            validate_flow_config(entry["config"])
        except ValidationError as exc:
            raise _prefixed(exc, f"publishedVersions.{i}.config") from None


def version_summary(entry: Mapping[str, Any]) -> dict[str, Any]:
    nodes = entry["config"].get("nodes") or []
    score = next((n for n in nodes if n.get("type") == "score"), None)
    method = (score.get("config") or {}).get("method", "priority_weighted") if score else None
    return {
        "version": entry["version"],
        "publishedAt": entry["publishedAt"],
        "notes": entry.get("notes", ""),
        "summary": {"nodeCount": len(nodes), "scoringMethod": method},
    }


def _published_at(now: datetime) -> str:
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- store operations ----------------------------------------------------------------------
def _transaction(store: Store, tenant_id: str) -> Any:
    from engine.store.catalog_tx import catalog_transaction

    return catalog_transaction(store, tenant_id)


def _clear_other_defaults(tx: CatalogTx, keep: str) -> None:
    for other in tx.active(TABLE):
        if other["id"] != keep and other.get("isDefault"):
            tx.update(TABLE, other["id"], {"isDefault": False}, validate=False)


def create_flow(store: Store, tenant_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """A new draft flow (``publishedVersions`` cannot be given: publish instead)."""
    if data.get("publishedVersions"):
        raise ValidationError(
            "publishedVersions is read-only: save draftConfig, then POST "
            "/api/v1/decision-flows/{id}/publish",
            field="publishedVersions",
        )
    data = {k: v for k, v in data.items() if k != "publishedVersions"}
    with _transaction(store, tenant_id) as tx:
        if not tx.active(TABLE):
            data["isDefault"] = True  # the first flow is the default
        doc = tx.create(TABLE, data)
        if doc.get("isDefault"):
            _clear_other_defaults(tx, keep=doc["id"])
        return doc


def update_flow(
    store: Store,
    tenant_id: str,
    flow_id: str,
    changes: dict[str, Any],
    *,
    replace: bool = False,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Save a flow's draft and settings; its published versions stay as they are."""
    from engine.catalog.documents import PublishedVersion

    changes = dict(changes)
    sent = changes.pop("publishedVersions", None)
    with _transaction(store, tenant_id) as tx:
        current = tx.require(TABLE, flow_id)
        stored = current.get("publishedVersions") or []
        if sent is not None:
            try:
                same = (
                    isinstance(sent, list)
                    and [PublishedVersion.model_validate(v).dump() for v in sent] == stored
                )
            except Exception:
                same = False
            if not same:
                raise ValidationError(
                    "publishedVersions is read-only: publish or roll back instead of "
                    "editing versions",
                    field="publishedVersions",
                )
        changes["publishedVersions"] = stored
        doc = tx.update(TABLE, flow_id, changes, replace=replace, expected_version=expected_version)
        if doc.get("isDefault") and not current.get("isDefault"):
            _clear_other_defaults(tx, keep=flow_id)
        return doc


def _check_compiles(store: Store, tenant_id: str, config: Mapping[str, Any], field: str) -> None:
    from engine.flow.compiled import build_compiled

    try:
        build_compiled(store.load_catalog(tenant_id), config, key=None, version="check")
    except NextbestError as exc:
        if exc.http_status >= 500:
            raise
        raise _prefixed(
            ValidationError(exc.message, details=exc.details, field=exc.field), field
        ) from None


def _append_version(
    store: Store,
    tenant_id: str,
    flow_id: str,
    *,
    pick: Any,
    notes: str,
    expected_version: int | None,
    now: datetime,
    rollback: bool,
) -> dict[str, Any]:
    """Validate + compile the config ``pick(flow)`` chooses, then append it as a version in a
    transaction, retrying if the flow changed in between (409 if the caller pinned it)."""
    for _ in range(_ATTEMPTS):
        flow = store.decision_flows.get(tenant_id, flow_id)
        if expected_version is not None and expected_version != flow["version"]:
            raise ConflictError(
                f"decision flow {flow_id!r} was changed by someone else (version "
                f"{flow['version']}, you sent {expected_version}); reload it and retry",
                field="rowVersion",
            )
        config, note, field = pick(flow)
        try:
            validate_flow_config(config)
        except ValidationError as exc:
            raise _prefixed(exc, field) from None
        _check_compiles(store, tenant_id, config, field)
        with _transaction(store, tenant_id) as tx:
            current = tx.require(TABLE, flow_id)
            if current["version"] != flow["version"]:
                continue  # changed since we validated: validate again
            versions = current.get("publishedVersions") or []
            number = max((int(v["version"]) for v in versions), default=0) + 1
            entry = {
                "version": number,
                "config": config,
                "publishedAt": _published_at(now),
                "notes": note,
            }
            changes: dict[str, Any] = {"publishedVersions": [*versions, entry]}
            if rollback:
                changes.update(draftConfig=config, status="active")
            elif current.get("status", "draft") == "draft":
                changes["status"] = "active"
            return tx.update(TABLE, flow_id, changes)
    raise ConflictError(f"decision flow {flow_id!r} keeps changing; retry", field="id")


def publish(
    store: Store,
    tenant_id: str,
    flow_id: str,
    *,
    now: datetime,
    notes: str = "",
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Append the draft as the next published version."""
    return _append_version(
        store,
        tenant_id,
        flow_id,
        pick=lambda flow: (flow.get("draftConfig") or {}, notes, "draftConfig"),
        notes=notes,
        expected_version=expected_version,
        now=now,
        rollback=False,
    )


def rollback(
    store: Store,
    tenant_id: str,
    flow_id: str,
    *,
    version: int,
    now: datetime,
    notes: str = "",
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Append a version equal to ``version``; history is never rewritten."""

    def pick(flow: dict[str, Any]) -> tuple[Any, str, str]:
        versions = flow.get("publishedVersions") or []
        for i, entry in enumerate(versions):
            if int(entry["version"]) == version:
                return (
                    entry["config"],
                    f"Rollback to v{version}: {notes or f'restored version {version}'}",
                    (f"publishedVersions.{i}.config"),
                )
        known = ", ".join(str(v["version"]) for v in versions) or "none"
        raise NotFoundError(
            f"decision flow {flow_id!r} has no published version {version} (published: {known})",
            field="version",
        )

    return _append_version(
        store,
        tenant_id,
        flow_id,
        pick=pick,
        notes=notes,
        expected_version=expected_version,
        now=now,
        rollback=True,
    )


def versions(store: Store, tenant_id: str, flow_id: str) -> dict[str, Any]:
    flow = store.decision_flows.get(tenant_id, flow_id)
    entries = sorted(flow.get("publishedVersions") or [], key=lambda v: int(v["version"]))
    return {"flowId": flow_id, "versions": [version_summary(v) for v in entries]}


def version(store: Store, tenant_id: str, flow_id: str, number: int) -> dict[str, Any]:
    flow = store.decision_flows.get(tenant_id, flow_id)
    for entry in flow.get("publishedVersions") or []:
        if int(entry["version"]) == number:
            return {"flowId": flow_id, **version_summary(entry), "configSnapshot": entry["config"]}
    raise NotFoundError(
        f"decision flow {flow_id!r} has no published version {number}", field="version"
    )


def ensure_base(store: Store, tenant_id: str, *, now: datetime) -> tuple[str, bool]:
    """``(flow id, created)``: the tenant's Base NBA flow, created if missing (default only
    when the tenant has no other flow)."""
    for _ in range(_ATTEMPTS):
        try:
            with _transaction(store, tenant_id) as tx:
                flows = tx.active(TABLE)
                existing = next((f for f in flows if f.get("key") == BASE_FLOW_KEY), None)
                if existing is not None:
                    return existing["id"], False
                doc = base_nba_flow(published_at=now)
                doc["isDefault"] = not flows
                return tx.create(TABLE, doc)["id"], True
        except ConflictError:  # created concurrently (e.g. by a first recommend)
            continue
    raise ConflictError("the Base NBA flow could not be created; retry", field="key")


__all__ = [
    "check_published_versions",
    "create_flow",
    "ensure_base",
    "publish",
    "rollback",
    "update_flow",
    "validate_draft_config",
    "version",
    "version_summary",
    "versions",
]
