"""Tenant-scoped repositories for catalog entities: validated, versioned, soft-deleted.

Every write validates the whole document through its pydantic model, checks uniqueness and
references inside one transaction under the write lock, and bumps the tenant's catalog
version so cached snapshots are rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pydantic
from pydantic.alias_generators import to_camel

from engine.catalog.documents import ENTITY_MODELS
from engine.errors import ConflictError, NotFoundError, ValidationError
from engine.store._db import Database, new_id, utcnow
from engine.store._entities import ENTITIES, EntitySpec

META_FIELDS = ("id", "version", "createdAt", "updatedAt", "deletedAt")
MAX_PAGE = 100


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    total: int
    limit: int
    has_more: bool
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "pagination": {
                "total": self.total,
                "limit": self.limit,
                "hasMore": self.has_more,
                "nextCursor": self.next_cursor,
            },
        }


def validation_error(exc: pydantic.ValidationError, label: str) -> ValidationError:
    details = []
    for err in exc.errors():
        loc = ".".join(to_camel(p) if isinstance(p, str) else str(p) for p in err["loc"])
        loc = loc or "body"
        msg = err["msg"].removeprefix("Value error, ")
        details.append({"field": loc, "message": msg})
    first = details[0]
    return ValidationError(
        f"invalid {label}: {first['field']}: {first['message']}", details=details
    )


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(timespec="milliseconds") + "Z"


class CatalogRepo:
    """CRUD for one entity table.

    ``on_write(cur, tenant_id)`` runs inside each write transaction, ``on_commit(tenant_id)``
    after it committed.
    """

    def __init__(
        self,
        db: Database,
        spec: EntitySpec,
        *,
        check_tenant: Callable[[Any, str], None],
        on_write: Callable[[Any, str], None],
        on_commit: Callable[[str], None],
        validators: tuple[Callable[[str, dict[str, Any]], None], ...] = (),
    ) -> None:
        self.db = db
        self.spec = spec
        self.model = ENTITY_MODELS[spec.table]
        self._check_tenant = check_tenant
        self._on_write = on_write
        self._on_commit = on_commit
        self._validators = validators

    # -- reads ---------------------------------------------------------------------------
    def get(self, tenant_id: str, entity_id: str, *, include_deleted: bool = False) -> dict:
        row = self._fetch(self.db.cursor(), tenant_id, entity_id, include_deleted)
        if row is None:
            raise NotFoundError(f"{self.spec.label} {entity_id!r} not found", field="id")
        return row

    def list(
        self,
        tenant_id: str,
        *,
        limit: int = 25,
        cursor: str | None = None,
        include_deleted: bool = False,
    ) -> Page:
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        deleted = "" if include_deleted else " AND deleted_at IS NULL"
        cur = self.db.cursor()
        total = cur.execute(
            f"SELECT count(*) FROM {self.spec.table} WHERE tenant_id = ?{deleted}", [tenant_id]
        ).fetchall()[0][0]
        params: list[Any] = [tenant_id]
        after = ""
        if cursor is not None:
            after = " AND id < ?"
            params.append(cursor)
        rows = cur.execute(
            f"SELECT id, doc, version, created_at, updated_at, deleted_at FROM {self.spec.table} "
            f"WHERE tenant_id = ?{deleted}{after} ORDER BY id DESC LIMIT ?",
            [*params, limit + 1],
        ).fetchall()
        has_more = len(rows) > limit
        data = [self._row(r) for r in rows[:limit]]
        return Page(data, total, limit, has_more, data[-1]["id"] if has_more else None)

    def all_active(self, tenant_id: str, cur: Any | None = None) -> list[dict[str, Any]]:
        cur = cur or self.db.cursor()
        rows = cur.execute(
            f"SELECT id, doc, version, created_at, updated_at, deleted_at FROM {self.spec.table} "
            "WHERE tenant_id = ? AND deleted_at IS NULL ORDER BY id",
            [tenant_id],
        ).fetchall()
        return [self._row(r) for r in rows]

    # -- writes --------------------------------------------------------------------------
    def create(self, tenant_id: str, data: dict[str, Any]) -> dict[str, Any]:
        doc = self._validate(tenant_id, data)
        entity_id = doc.get("id") or (
            doc["key"] if self.spec.table == "outcome_types" else new_id(self.spec.prefix)
        )
        doc["id"] = entity_id
        now = utcnow()
        with self.db.transaction() as cur:
            self._check_tenant(cur, tenant_id)
            if self._fetch(cur, tenant_id, entity_id, include_deleted=True) is not None:
                raise ConflictError(
                    f"{self.spec.label} id {entity_id!r} already exists", field="id"
                )
            self._check_unique(cur, tenant_id, doc, exclude_id=None)
            self._check_refs(cur, tenant_id, doc)
            cur.execute(
                f"INSERT INTO {self.spec.table} VALUES (?, ?, ?, ?, ?, 1, ?, ?, NULL)",
                [
                    tenant_id,
                    entity_id,
                    self._name(doc),
                    doc.get("status"),
                    orjson.dumps(doc).decode(),
                    now,
                    now,
                ],
            )
            self._on_write(cur, tenant_id)
        self._on_commit(tenant_id)
        return self.get(tenant_id, entity_id)

    def update(
        self,
        tenant_id: str,
        entity_id: str,
        changes: dict[str, Any],
        *,
        replace: bool = False,
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """Merge ``changes`` (or replace the document) and re-validate it whole."""
        with self.db.transaction() as cur:
            self._check_tenant(cur, tenant_id)
            current = self._fetch(cur, tenant_id, entity_id, include_deleted=False)
            if current is None:
                raise NotFoundError(f"{self.spec.label} {entity_id!r} not found", field="id")
            if expected_version is not None and expected_version != current["version"]:
                raise ConflictError(
                    f"{self.spec.label} {entity_id!r} was changed by someone else "
                    f"(version {current['version']}, you sent {expected_version}); "
                    "reload it and retry",
                    field="rowVersion",
                )
            changes = {k: v for k, v in changes.items() if k not in META_FIELDS}
            base = {} if replace else {k: v for k, v in current.items() if k not in META_FIELDS}
            doc = self._validate(tenant_id, {**base, **changes})
            doc["id"] = entity_id
            self._check_unique(cur, tenant_id, doc, exclude_id=entity_id)
            self._check_refs(cur, tenant_id, doc)
            self._write(cur, tenant_id, entity_id, doc, current["version"] + 1)
            self._on_write(cur, tenant_id)
        self._on_commit(tenant_id)
        return self.get(tenant_id, entity_id)

    def delete(self, tenant_id: str, entity_id: str) -> dict[str, Any]:
        """Soft delete; cascades to dependants (an offer's creatives, a channel's placements)."""
        now = utcnow()
        with self.db.transaction() as cur:
            self._check_tenant(cur, tenant_id)
            if self._fetch(cur, tenant_id, entity_id, include_deleted=False) is None:
                raise NotFoundError(f"{self.spec.label} {entity_id!r} not found", field="id")
            self._soft_delete(cur, self.spec.table, tenant_id, [entity_id], now)
            for table, ref_field in self.spec.cascade:
                ids = [
                    r[0]
                    for r in cur.execute(
                        f"SELECT id FROM {table} WHERE tenant_id = ? AND deleted_at IS NULL "
                        f"AND json_extract_string(doc, '$.{ref_field}') = ?",
                        [tenant_id, entity_id],
                    ).fetchall()
                ]
                self._soft_delete(cur, table, tenant_id, ids, now)
            self._on_write(cur, tenant_id)
        self._on_commit(tenant_id)
        return self.get(tenant_id, entity_id, include_deleted=True)

    # -- helpers -------------------------------------------------------------------------
    def _validate(self, tenant_id: str, data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationError(f"{_a(self.spec.label)} must be a JSON object", field="body")
        try:
            doc = self.model.model_validate(data).dump()
        except pydantic.ValidationError as exc:
            raise validation_error(exc, self.spec.label) from None
        for validate in self._validators:
            validate(tenant_id, doc)
        return doc

    def _name(self, doc: dict[str, Any]) -> str:
        return str(doc.get("name") or doc.get("key") or doc.get("id"))

    def _check_unique(self, cur: Any, tenant_id: str, doc: dict, exclude_id: str | None) -> None:
        field = self.spec.unique
        if not field:
            return
        value = doc.get(field)
        row = cur.execute(
            f"SELECT id FROM {self.spec.table} WHERE tenant_id = ? AND deleted_at IS NULL "
            f"AND json_extract_string(doc, '$.{field}') = ? AND id IS DISTINCT FROM ?",
            [tenant_id, value, exclude_id],
        ).fetchall()
        row = row[0] if row else None
        if row is not None:
            raise ConflictError(
                f"{_a(self.spec.label)} with {field} {value!r} already exists ({row[0]})",
                field=field,
            )

    def _check_refs(self, cur: Any, tenant_id: str, doc: dict[str, Any]) -> None:
        for ref_field, table in self.spec.refs.items():
            ref = doc.get(ref_field)
            if ref is None:
                continue
            found = cur.execute(
                f"SELECT 1 FROM {table} WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL",
                [tenant_id, ref],
            ).fetchall()
            found = found[0] if found else None
            if found is None:
                label = ENTITIES[table].label
                raise ValidationError(
                    f"{ref_field}: {label} {ref!r} does not exist", field=ref_field
                )

    def _fetch(
        self, cur: Any, tenant_id: str, entity_id: str, include_deleted: bool
    ) -> dict | None:
        deleted = "" if include_deleted else " AND deleted_at IS NULL"
        row = cur.execute(
            f"SELECT id, doc, version, created_at, updated_at, deleted_at FROM {self.spec.table} "
            f"WHERE tenant_id = ? AND id = ?{deleted}",
            [tenant_id, entity_id],
        ).fetchall()
        row = row[0] if row else None
        return None if row is None else self._row(row)

    def _write(self, cur: Any, tenant_id: str, entity_id: str, doc: dict, version: int) -> None:
        cur.execute(
            f"UPDATE {self.spec.table} SET doc = ?, name = ?, status = ?, version = ?, "
            "updated_at = ? WHERE tenant_id = ? AND id = ?",
            [
                orjson.dumps(doc).decode(),
                self._name(doc),
                doc.get("status"),
                version,
                utcnow(),
                tenant_id,
                entity_id,
            ],
        )

    @staticmethod
    def _soft_delete(cur: Any, table: str, tenant_id: str, ids: list[str], now: datetime) -> None:
        if ids:
            cur.execute(
                f"UPDATE {table} SET deleted_at = ?, updated_at = ?, version = version + 1 "
                "WHERE tenant_id = ? AND id IN (SELECT unnest(?))",
                [now, now, tenant_id, ids],
            )

    @staticmethod
    def _row(row: tuple) -> dict[str, Any]:
        entity_id, doc, version, created, updated, deleted = row
        out = orjson.loads(doc)
        out.update(
            id=entity_id,
            version=version,
            createdAt=_iso(created),
            updatedAt=_iso(updated),
            deletedAt=_iso(deleted),
        )
        return out
