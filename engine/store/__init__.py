"""The only I/O of the engine: the embedded DuckDB store and its tenant-scoped repositories."""

from engine.store._db import new_id, utcnow
from engine.store.catalog_repo import CatalogRepo, Page
from engine.store.interactions import LOG_SCHEMA
from engine.store.store import Store
from engine.store.tenants import ApiKey

__all__ = ["LOG_SCHEMA", "ApiKey", "CatalogRepo", "Page", "Store", "new_id", "utcnow"]
