"""Catalog documents (validated shapes) and the per-tenant snapshot of Polars frames."""

from engine.catalog.documents import ENTITY_MODELS, SYSTEM_OUTCOME_TYPES, Document
from engine.catalog.snapshot import HISTORY_SCHEMA, Catalog, ComputedField, build_catalog

__all__ = [
    "ENTITY_MODELS",
    "HISTORY_SCHEMA",
    "SYSTEM_OUTCOME_TYPES",
    "Catalog",
    "ComputedField",
    "Document",
    "build_catalog",
]
