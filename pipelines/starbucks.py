"""The Starbucks sample pack: catalog documents plus deterministic customer and history data.

The catalog lives as one human-readable YAML file per entity in ``data/starbucks/``
(``offers.yaml`` holds the offers, ...). ``load_pack_documents`` parses and validates every
document through the catalog models and checks the references between them, so the result
can go straight to ``engine.catalog.build_catalog`` or the store. ``generate_customers`` and
``generate_history`` synthesise rewards members and their interaction log from a seed, in the
image of the public Starbucks rewards data set (see ``data/starbucks/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydantic
import yaml

from engine.catalog.documents import ENTITY_MODELS
from engine.errors import ValidationError
from pipelines._starbucks_customers import generate_customers
from pipelines._starbucks_history import HISTORY_FRAME_SCHEMA, generate_history

__all__ = [
    "HISTORY_FRAME_SCHEMA",
    "PACK_DIR",
    "generate_customers",
    "generate_history",
    "load_pack_documents",
]

PACK_DIR = Path(__file__).resolve().parent.parent / "data" / "starbucks"

# document field -> entity whose ids it must name (when set)
_REFERENCES: dict[str, dict[str, str]] = {
    "sub_categories": {"categoryId": "categories"},
    "offers": {"categoryId": "categories", "subCategoryId": "sub_categories"},
    "placements": {"channelId": "channels"},
    "creatives": {"offerId": "offers", "channelId": "channels", "placementId": "placements"},
    "flow_routes": {
        "decisionFlowId": "decision_flows",
        "channelId": "channels",
        "placementId": "placements",
    },
}
# rule/policy scope -> entity its scopeId names
_SCOPE_ENTITY = {
    "category": "categories",
    "subcategory": "sub_categories",
    "offer": "offers",
    "creative": "creatives",
    "channel": "channels",
    "placement": "placements",
}


def load_pack_documents(pack_dir: Path | str = PACK_DIR) -> dict[str, list[dict[str, Any]]]:
    """Parse ``<entity>.yaml`` files of a pack and return validated documents by entity name.

    Each document goes through its ``ENTITY_MODELS`` model (``model_validate(doc).dump()``);
    ids (and flow keys) must be unique and every reference must name a document of the pack.
    Raises ``ValidationError`` naming the file, the document and the field on any problem.
    """
    pack = Path(pack_dir)
    if not pack.is_dir():
        raise ValidationError(f"pack directory {str(pack)!r} does not exist", field="pack_dir")
    unknown = sorted(p.name for p in pack.glob("*.yaml") if p.stem not in ENTITY_MODELS)
    if unknown:
        raise ValidationError(
            f"unknown catalog file(s) {', '.join(unknown)} in {pack}; "
            f"Hint: name files after an entity: {', '.join(ENTITY_MODELS)}",
            field="pack_dir",
        )
    documents: dict[str, list[dict[str, Any]]] = {}
    for entity, model in ENTITY_MODELS.items():
        path = pack / f"{entity}.yaml"
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise ValidationError(f"{path.name}: expected a list of documents", field=path.name)
        docs = []
        for index, item in enumerate(raw):
            label = f"{path.name}[{index}]"
            if not isinstance(item, dict):
                raise ValidationError(f"{label}: a document must be a mapping", field=label)
            label = f"{path.name}[{item.get('id') or item.get('key') or index}]"
            try:
                docs.append(model.model_validate(item).dump())
            except pydantic.ValidationError as exc:
                raise _invalid(exc, label) from None
        documents[entity] = docs
    _check_unique(documents)
    _check_references(documents)
    return documents


def _invalid(exc: pydantic.ValidationError, label: str) -> ValidationError:
    details = [
        {
            "field": f"{label}.{'.'.join(str(p) for p in err['loc'])}".rstrip("."),
            "message": err["msg"].removeprefix("Value error, "),
        }
        for err in exc.errors()
    ]
    first = details[0]
    return ValidationError(f"{first['field']}: {first['message']}", details=details)


def _check_unique(documents: dict[str, list[dict[str, Any]]]) -> None:
    for entity, docs in documents.items():
        for field in ("id", "key"):
            values = [d[field] for d in docs if d.get(field) is not None]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValidationError(
                    f"{entity}.yaml: duplicate {field} {', '.join(dupes)}",
                    field=f"{entity}.{field}",
                )
        if entity != "outcome_types" and any(d.get("id") is None for d in docs):
            raise ValidationError(
                f"{entity}.yaml: every document needs a stable id", field=f"{entity}.id"
            )


def _ids(documents: dict[str, list[dict[str, Any]]], entity: str) -> set[str]:
    return {d["id"] for d in documents.get(entity, ()) if "id" in d}


def _check_references(documents: dict[str, list[dict[str, Any]]]) -> None:
    for entity, refs in _REFERENCES.items():
        for doc in documents.get(entity, ()):
            for field, target in refs.items():
                _require(documents, entity, doc, field, doc.get(field), target)
    for entity in ("qualification_rules", "contact_policies"):
        for doc in documents.get(entity, ()):
            assignments: Iterable[dict[str, Any]] = [doc, *doc.get("scopes", ())]
            for a in assignments:
                target = _SCOPE_ENTITY.get(a.get("scope", "global"))
                if target is not None:
                    _require(documents, entity, doc, "scopeId", a.get("scopeId"), target)


def _require(
    documents: dict[str, list[dict[str, Any]]],
    entity: str,
    doc: dict[str, Any],
    field: str,
    value: str | None,
    target: str,
) -> None:
    if value is not None and value not in _ids(documents, target):
        raise ValidationError(
            f"{entity}.yaml[{doc.get('id')}].{field}: {value!r} is not an id in {target}.yaml",
            field=f"{entity}.{field}",
        )
