"""Several catalog writes of one tenant as ONE transaction (all or nothing).

``CatalogRepo`` commits each write on its own; publishing a flow and clearing ``isDefault``
on the others, upserting a flow route, or importing a whole catalog must not be seen half
done. ``catalog_transaction(store, tenant_id)`` opens one DuckDB transaction under the
store's write lock and yields a ``CatalogTx`` whose ``create``/``update`` run the same
validation, uniqueness and reference checks as the repositories (``store.catalog``: the
store's validators plus ``catalog_checks``), seeing the transaction's own earlier writes.
The tenant's catalog version is bumped once, on commit; any exception rolls everything back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson

from engine.errors import ConflictError, NotFoundError
from engine.store._db import new_id, utcnow
from engine.store.catalog_repo import META_FIELDS, CatalogRepo
from engine.store.tenants import require_tenant

if TYPE_CHECKING:
    from engine.store.store import Store


class CatalogTx:
    """Reads and writes of one tenant's catalog inside an open transaction."""

    def __init__(self, repos: dict[str, CatalogRepo], cur: Any, tenant_id: str) -> None:
        self._repos = repos
        self._cur = cur
        self.tenant_id = tenant_id
        self.wrote = False

    def repo(self, table: str) -> CatalogRepo:
        return self._repos[table]

    def get(self, table: str, entity_id: str, *, include_deleted: bool = False) -> dict | None:
        return self._repos[table]._fetch(self._cur, self.tenant_id, entity_id, include_deleted)

    def require(self, table: str, entity_id: str) -> dict[str, Any]:
        row = self.get(table, entity_id)
        if row is None:
            raise NotFoundError(
                f"{self._repos[table].spec.label} {entity_id!r} not found", field="id"
            )
        return row

    def active(self, table: str) -> list[dict[str, Any]]:
        return self._repos[table].all_active(self.tenant_id, self._cur)

    def validate(self, table: str, data: dict[str, Any]) -> dict[str, Any]:
        """The document as it would be stored (model + validators), without writing."""
        return self._repos[table]._validate(self.tenant_id, data)

    def create(self, table: str, data: dict[str, Any]) -> dict[str, Any]:
        repo, cur, tenant = self._repos[table], self._cur, self.tenant_id
        doc = repo._validate(tenant, data)
        entity_id = doc.get("id") or (
            doc["key"] if table == "outcome_types" else new_id(repo.spec.prefix)
        )
        doc["id"] = entity_id
        if repo._fetch(cur, tenant, entity_id, include_deleted=True) is not None:
            raise ConflictError(f"{repo.spec.label} id {entity_id!r} already exists", field="id")
        repo._check_unique(cur, tenant, doc, exclude_id=None)
        repo._check_refs(cur, tenant, doc)
        now = utcnow()
        cur.execute(
            f"INSERT INTO {repo.spec.table} VALUES (?, ?, ?, ?, ?, 1, ?, ?, NULL)",
            [
                tenant,
                entity_id,
                repo._name(doc),
                doc.get("status"),
                orjson.dumps(doc).decode(),
                now,
                now,
            ],
        )
        self.wrote = True
        return self.require(table, entity_id)

    def update(
        self,
        table: str,
        entity_id: str,
        changes: dict[str, Any],
        *,
        replace: bool = False,
        expected_version: int | None = None,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Merge (or replace) and re-validate like ``CatalogRepo.update``; ``validate=False``
        only for bookkeeping fields the server itself sets (``isDefault`` of other flows)."""
        repo, cur, tenant = self._repos[table], self._cur, self.tenant_id
        current = self.require(table, entity_id)
        if expected_version is not None and expected_version != current["version"]:
            raise ConflictError(
                f"{repo.spec.label} {entity_id!r} was changed by someone else (version "
                f"{current['version']}, you sent {expected_version}); reload it and retry",
                field="rowVersion",
            )
        changes = {k: v for k, v in changes.items() if k not in META_FIELDS}
        base = {} if replace else {k: v for k, v in current.items() if k not in META_FIELDS}
        doc = {**base, **changes}
        if validate:
            doc = repo._validate(tenant, doc)
            doc["id"] = entity_id
            repo._check_unique(cur, tenant, doc, exclude_id=entity_id)
            repo._check_refs(cur, tenant, doc)
        else:
            doc["id"] = entity_id
        repo._write(cur, tenant, entity_id, doc, current["version"] + 1)
        self.wrote = True
        return self.require(table, entity_id)


@contextmanager
def catalog_transaction(store: Store, tenant_id: str) -> Iterator[CatalogTx]:
    """One all-or-nothing transaction over the tenant's catalog (404 for unknown tenants)."""
    repos = store.catalog
    with store.db.transaction() as cur:
        require_tenant(cur, tenant_id)
        tx = CatalogTx(repos, cur, tenant_id)
        yield tx
        if tx.wrote:
            store._bump_catalog_version(cur, tenant_id)
    if tx.wrote:
        store._forget_version(tenant_id)
