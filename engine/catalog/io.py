"""Catalog import and export: a whole tenant catalog as one human-readable document.

The format is the sample pack's (``data/starbucks/*.yaml``) in one mapping: one list of
documents per entity, keyed by the pack's file names (``categories``, ``sub_categories``,
``offers``, ...), each document in the API's camelCase shape with its ``id`` and without
the store's bookkeeping (``version``, timestamps). The 10 system outcome types are in every
tenant and are not exported. ``load_pack_documents()`` output can be imported as is.

Import is an upsert by id (a document without ``id`` matches on its unique name or key),
applied in foreign-key order inside ONE transaction: every document is validated exactly as
the API validates a write (model, store validators, uniqueness, references to entities of
the same tenant, including ones created earlier in the same import), and any error rolls
everything back. A dry run does the same work and rolls back on purpose, so it reports
exactly what a real import would do: per entity, which ids would be created, updated or
left unchanged. Nothing is ever deleted; published flow versions may only be appended.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from engine.catalog.documents import ENTITY_MODELS
from engine.errors import ConflictError, ForbiddenError, NextbestError, ValidationError

if TYPE_CHECKING:
    from engine.store.catalog_tx import CatalogTx
    from engine.store.store import Store

# Foreign-key order: every entity after the ones it references.
ORDER = (
    "categories",
    "sub_categories",
    "channels",
    "placements",
    "offers",
    "creatives",
    "outcome_types",
    "behavioral_metrics",
    "qualification_rules",
    "contact_policies",
    "decision_flows",
    "experiments",
    "flow_routes",
)
ENTITIES = tuple(e for e in ORDER if e in ENTITY_MODELS)
BOOKKEEPING = ("version", "createdAt", "updatedAt", "deletedAt")
OUTCOMES = ("created", "updated", "unchanged")
MAX_YAML_NODES = 200_000


def _public(entity: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in BOOKKEEPING}
    if entity == "outcome_types":
        out.pop("id", None)  # an outcome type's id is its key
    return out


def export_catalog(store: Store, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    """The tenant's live catalog, one consistent snapshot, documents sorted by id."""
    documents = store.load_catalog(tenant_id).documents
    bundle: dict[str, list[dict[str, Any]]] = {}
    for entity in ENTITIES:
        docs = sorted(documents.get(entity, ()), key=lambda d: str(d.get("id")))
        if entity == "outcome_types":
            docs = [d for d in docs if not d.get("isSystem")]
        bundle[entity] = [_public(entity, d) for d in docs]
    return bundle


def to_yaml(bundle: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(bundle), sort_keys=False, allow_unicode=True, width=100)


def _size(node: yaml.Node, seen: dict[int, int], path: set[int]) -> int:
    """Nodes of the document once aliases are expanded (a YAML alias bomb is small text
    but exponentially large data)."""
    key = id(node)
    if key in seen:
        return seen[key]
    if key in path:
        raise ValidationError("YAML must not contain recursive aliases", field="body")
    path.add(key)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_size(n, seen, path) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_size(k, seen, path) + _size(v, seen, path) for k, v in node.value)
    path.discard(key)
    seen[key] = total
    if total > MAX_YAML_NODES:
        raise ValidationError(
            f"the YAML document is too large (over {MAX_YAML_NODES} "
            "values once aliases are expanded)",
            field="body",
        )
    return total


def from_yaml(text: str | bytes) -> Any:
    """Parse one YAML document with the safe loader (no tags, bounded alias expansion)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _size(node, {}, set())
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ValidationError(f"malformed YAML: {exc}".replace("\n", " "), field="body") from None
    except RecursionError:
        raise ValidationError("the YAML document is nested too deeply", field="body") from None
    finally:
        loader.dispose()


def parse_bundle(data: Any) -> dict[str, list[dict[str, Any]]]:
    """Check the shape: a mapping of known entity names to lists of objects."""
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"a catalog is an object with one list of documents per entity ({', '.join(ENTITIES)})",
            field="body",
        )
    bundle: dict[str, list[dict[str, Any]]] = {}
    for entity, docs in data.items():
        if entity not in ENTITIES:
            raise ValidationError(
                f"{entity}: unknown entity; use {', '.join(ENTITIES)}", field=str(entity)
            )
        docs = [] if docs is None else docs
        if not isinstance(docs, list):
            raise ValidationError(f"{entity}: expected a list of documents", field=entity)
        for i, doc in enumerate(docs):
            if not isinstance(doc, Mapping):
                raise ValidationError(
                    f"{entity}.{i}: a document must be an object", field=f"{entity}.{i}"
                )
        bundle[entity] = [dict(d) for d in docs]
    return bundle


class _DryRun(Exception):
    """Raised at the end of a dry run to roll its transaction back."""


def _located(exc: NextbestError, entity: str, index: int, doc: Mapping[str, Any]) -> NextbestError:
    name = doc.get("id") or doc.get("key") or doc.get("name")
    where = f"{entity}.{index}"
    label = f"{entity}[{name}]" if isinstance(name, str) else where
    details = [
        {
            "field": f"{where}.{d['field']}" if d.get("field") not in (None, "body") else where,
            "message": d["message"],
        }
        for d in exc.details or [{"field": exc.field, "message": exc.message}]
    ]
    return type(exc)(f"{label}: {exc.message}", details=details)


def _apply(tx: CatalogTx, entity: str, doc: dict[str, Any]) -> tuple[str, str]:
    """Write one document; ``(outcome, id)`` with outcome created/updated/unchanged."""
    repo = tx.repo(entity)
    entity_id = doc.get("key") if entity == "outcome_types" else doc.get("id")
    if entity_id is not None and not isinstance(entity_id, str):
        raise ValidationError("id must be a string", field="id")
    if entity_id is None and repo.spec.unique:
        value = doc.get(repo.spec.unique)
        match = next((d for d in tx.active(entity) if d.get(repo.spec.unique) == value), None)
        entity_id = match["id"] if match is not None else None
    existing = tx.get(entity, entity_id, include_deleted=True) if entity_id else None
    if existing is None:
        return "created", tx.create(entity, doc)["id"]
    if existing.get("deletedAt") is not None:
        raise ConflictError(
            f"{repo.spec.label} {entity_id!r} was deleted; a deleted id cannot be reused",
            field="id",
        )
    if existing.get("isSystem"):
        fields = ("name", "description", "classification", "category")
        wanted = tx.validate(entity, {**doc, "isSystem": False})
        if any(wanted.get(f) != existing.get(f) for f in fields):
            raise ForbiddenError(
                f"outcome type {entity_id!r} is a system type and cannot be modified",
                field="key",
            )
        return "unchanged", entity_id
    data = {k: v for k, v in doc.items() if k != "id"}
    new = tx.validate(entity, data)
    old = {k: v for k, v in existing.items() if k not in (*BOOKKEEPING, "id")}
    new.pop("id", None)
    if new == old:
        return "unchanged", entity_id
    if entity == "decision_flows":
        before = old.get("publishedVersions") or []
        after = new.get("publishedVersions") or []
        if after[: len(before)] != before:
            raise ConflictError(
                f"decision flow {entity_id!r}: published versions are immutable; the import "
                "must keep the existing versions and may only append new ones",
                field="publishedVersions",
            )
    tx.update(entity, entity_id, data, replace=True)
    return "updated", entity_id


def _settle_default(
    tx: CatalogTx,
    bundle: Mapping[str, list[dict[str, Any]]],
    report: dict[str, dict[str, list[str]]],
) -> None:
    """At most one default flow: an imported default clears the others."""
    flows = report.get("decision_flows")
    if not flows:
        return
    ids = [*flows["created"], *flows["updated"], *flows["unchanged"]]
    defaults = [i for i in ids if (tx.get("decision_flows", i) or {}).get("isDefault")]
    if len(defaults) > 1:
        raise ValidationError(
            f"decision_flows: only one flow can be the default (isDefault on "
            f"{', '.join(defaults)})",
            field="decision_flows",
        )
    if defaults:
        for other in tx.active("decision_flows"):
            if other["id"] != defaults[0] and other.get("isDefault"):
                tx.update("decision_flows", other["id"], {"isDefault": False}, validate=False)
                if other["id"] not in flows["updated"]:
                    flows["updated"].append(other["id"])


def import_catalog(
    store: Store, tenant_id: str, data: Any, *, dry_run: bool = False
) -> dict[str, Any]:
    """Apply (or, with ``dry_run``, only check) a catalog document; all or nothing."""
    from engine.store.catalog_tx import catalog_transaction

    bundle = parse_bundle(data)
    report: dict[str, dict[str, list[str]]] = {
        e: {o: [] for o in OUTCOMES} for e in ENTITIES if e in bundle
    }
    try:
        with catalog_transaction(store, tenant_id) as tx:
            for entity in ENTITIES:
                for index, doc in enumerate(bundle.get(entity, ())):
                    try:
                        outcome, entity_id = _apply(tx, entity, doc)
                    except NextbestError as exc:
                        if exc.http_status >= 500:
                            raise
                        raise _located(exc, entity, index, doc) from None
                    report[entity][outcome].append(entity_id)
            _settle_default(tx, bundle, report)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return {
        "dryRun": dry_run,
        "applied": not dry_run,
        "summary": {e: {o: len(ids) for o, ids in r.items()} for e, r in report.items()},
        "changes": report,
    }


__all__ = [
    "ENTITIES",
    "ORDER",
    "export_catalog",
    "from_yaml",
    "import_catalog",
    "parse_bundle",
    "to_yaml",
]
