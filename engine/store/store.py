"""The store facade: one object per process that owns the database and its repositories."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from engine.catalog.snapshot import Catalog, build_catalog
from engine.errors import ValidationError
from engine.store._db import Database, pepper_for, utcnow
from engine.store._entities import ENTITIES
from engine.store.catalog_checks import catalog_validators
from engine.store.catalog_repo import CatalogRepo
from engine.store.customers import Customers
from engine.store.interactions import Interactions
from engine.store.tenants import ApiKeys, Tenants, require_tenant
from engine.store.traces import Traces


def _validate_formulas(tenant_id: str, doc: dict[str, Any]) -> None:
    from engine.formula import FormulaError, compile_formula

    for i, field in enumerate(doc.get("customFields", [])):
        if field.get("type") != "computed":
            continue
        try:
            compile_formula(field["formula"])
        except FormulaError as exc:
            raise ValidationError(
                f"customFields.{i}.formula: {exc.message}", field=f"customFields.{i}.formula"
            ) from None


def _protect_system_outcomes(tenant_id: str, doc: dict[str, Any]) -> None:
    if doc.get("isSystem"):
        raise ValidationError(
            "isSystem is reserved for the built-in outcome types", field="isSystem"
        )


def _validate_metric(tenant_id: str, doc: dict[str, Any]) -> None:
    """A behavioral metric must compile (e.g. its filterConditions name known fields)."""
    from engine.metrics import compile_metric

    compile_metric(doc)


def _validate_experiment(tenant_id: str, doc: dict[str, Any]) -> None:
    """An experiment must parse for assignment (e.g. no variant named ``__holdout__``)."""
    from engine.experiments import parse_experiment

    parse_experiment(doc)


class Store:
    """Owns the DuckDB file. Thread-safe; build one per process (``open_store``)."""

    def __init__(self, path: str | Path, *, pepper: str | None = None) -> None:
        self.db = Database(path)
        self.tenants = Tenants(self.db)
        self.api_keys = ApiKeys(self.db, pepper_for(self.db.path, pepper))
        self.interactions = Interactions(self.db)
        self.customers = Customers(self.db)
        self.traces = Traces(self.db)
        validators = {
            "categories": (_validate_formulas,),
            "sub_categories": (_validate_formulas,),
            "outcome_types": (_protect_system_outcomes,),
            "behavioral_metrics": (_validate_metric,),
            "experiments": (_validate_experiment,),
        }
        checks = catalog_validators(self.db)
        self.catalog: dict[str, CatalogRepo] = {
            name: CatalogRepo(
                self.db,
                spec,
                check_tenant=require_tenant,
                on_write=self._bump_catalog_version,
                on_commit=self._forget_version,
                validators=(*validators.get(name, ()), *checks.get(name, ())),
            )
            for name, spec in ENTITIES.items()
        }
        self._versions: dict[str, int] = {}
        self._snapshots: dict[str, Catalog] = {}
        self._snapshot_lock = threading.Lock()
        from engine.store.journal import recover  # journal -> serving -> this module

        self.recovered_rows = recover(self)  # a log journal left by a crashed server

    def __getattr__(self, name: str) -> CatalogRepo:
        # store.offers, store.creatives, ... are the catalog repositories
        catalog = self.__dict__.get("catalog", {})
        if name in catalog:
            return catalog[name]
        raise AttributeError(name)

    # -- catalog versions and snapshots ---------------------------------------------------
    def _bump_catalog_version(self, cur: Any, tenant_id: str) -> None:
        version = self.catalog_version(tenant_id, cur) + 1
        cur.execute(
            "INSERT INTO tenant_catalog_versions VALUES (?, ?, ?)", [tenant_id, version, utcnow()]
        )

    def _forget_version(self, tenant_id: str) -> None:
        self._versions.pop(tenant_id, None)

    def catalog_version(self, tenant_id: str, cur: Any | None = None) -> int:
        if cur is None and tenant_id in self._versions:
            return self._versions[tenant_id]
        row = (
            (cur or self.db.cursor())
            .execute(
                "SELECT max(version) FROM tenant_catalog_versions WHERE tenant_id = ?", [tenant_id]
            )
            .fetchall()
        )
        row = row[0] if row else None
        return int(row[0] or 0)

    def load_catalog(self, tenant_id: str) -> Catalog:
        """The tenant's catalog as frames; cached until a catalog write bumps the version."""
        version = self.catalog_version(tenant_id)
        cached = self._snapshots.get(tenant_id)
        if cached is not None and cached.version == version:
            return cached
        with self._snapshot_lock:
            cached = self._snapshots.get(tenant_id)
            if cached is not None and cached.version == version:
                return cached
            with self.db.write_lock:  # a consistent read: no write can interleave
                cur = self.db.cursor()
                version = self.catalog_version(tenant_id, cur)
                documents = {
                    name: repo.all_active(tenant_id, cur) for name, repo in self.catalog.items()
                }
                snapshot = build_catalog(tenant_id, version, documents)
                self._snapshots[tenant_id] = snapshot
                self._versions[tenant_id] = version
            return snapshot

    def close(self) -> None:
        self.db.close()
