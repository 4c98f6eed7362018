"""Tenants and their API keys (stored only as HMAC-SHA256 under the pepper)."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from engine.catalog.documents import SYSTEM_OUTCOME_TYPES
from engine.errors import ConflictError, NotFoundError, ValidationError
from engine.store._db import Database, new_id, utcnow

TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
KEY_PREFIX_LEN = 12


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        def iso(ts: datetime | None) -> str | None:
            return None if ts is None else ts.isoformat(timespec="milliseconds") + "Z"

        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": list(self.scopes),
            "expiresAt": iso(self.expires_at),
            "createdAt": iso(self.created_at),
        }


def require_tenant(cur: Any, tenant_id: str) -> None:
    if not cur.execute("SELECT 1 FROM tenants WHERE id = ?", [tenant_id]).fetchall():
        raise NotFoundError(f"tenant {tenant_id!r} not found", field="tenantId")


class Tenants:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, tenant_id: str, name: str | None = None) -> dict[str, Any]:
        if not isinstance(tenant_id, str) or not TENANT_ID.match(tenant_id):
            raise ValidationError(
                "tenant id must be 1-64 letters, digits, '_' or '-', starting with a letter "
                "or digit",
                field="tenantId",
            )
        now = utcnow()
        with self.db.transaction() as cur:
            if cur.execute("SELECT 1 FROM tenants WHERE id = ?", [tenant_id]).fetchall():
                raise ConflictError(f"tenant {tenant_id!r} already exists", field="tenantId")
            cur.execute(
                "INSERT INTO tenants VALUES (?, ?, '{}', ?)", [tenant_id, name or tenant_id, now]
            )
            for key, classification, category in SYSTEM_OUTCOME_TYPES:
                doc = {
                    "id": key,
                    "key": key,
                    "name": key.replace("_", " ").capitalize(),
                    "description": "",
                    "classification": classification,
                    "category": category,
                    "isSystem": True,
                }
                cur.execute(
                    "INSERT INTO outcome_types VALUES (?, ?, ?, NULL, ?, 1, ?, ?, NULL)",
                    [tenant_id, key, key, orjson.dumps(doc).decode(), now, now],
                )
            cur.execute("INSERT INTO tenant_catalog_versions VALUES (?, 1, ?)", [tenant_id, now])
        return self.get(tenant_id)

    def get(self, tenant_id: str) -> dict[str, Any]:
        row = (
            self.db.cursor()
            .execute("SELECT id, name, settings, created_at FROM tenants WHERE id = ?", [tenant_id])
            .fetchall()
        )
        row = row[0] if row else None
        if row is None:
            raise NotFoundError(f"tenant {tenant_id!r} not found", field="tenantId")
        return {
            "id": row[0],
            "name": row[1],
            "settings": orjson.loads(row[2]),
            "createdAt": row[3].isoformat() + "Z",
        }

    def set_settings(self, tenant_id: str, settings: Mapping[str, Any]) -> None:
        """Store ``settings`` as the tenant's whole settings object (404 for no tenant)."""
        with self.db.transaction() as cur:
            require_tenant(cur, tenant_id)
            cur.execute(
                "UPDATE tenants SET settings = ? WHERE id = ?",
                [orjson.dumps(settings).decode(), tenant_id],
            )

    def exists(self, tenant_id: str) -> bool:
        return (
            self.db.cursor().execute("SELECT 1 FROM tenants WHERE id = ?", [tenant_id]).fetchall()
            != []
        )

    def list_ids(self) -> list[str]:
        return [
            r[0] for r in self.db.cursor().execute("SELECT id FROM tenants ORDER BY id").fetchall()
        ]


class ApiKeys:
    def __init__(self, db: Database, pepper: bytes) -> None:
        self.db = db
        self._pepper = pepper

    def hash(self, raw_key: str) -> str:
        return hmac.digest(self._pepper, raw_key.encode(), "sha256").hex()

    def create(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        expires_at: datetime | None = None,
        scopes: list[str] | None = None,
        raw_key: str | None = None,
    ) -> tuple[ApiKey, str]:
        """Mint a key; returns the record and the raw ``krn_…`` key (shown once, never stored)."""
        raw = raw_key or "krn_" + secrets.token_urlsafe(32)
        if not raw.startswith("krn_") or len(raw) < 20:
            raise ValidationError(
                "an API key must start with 'krn_' and be at least 20 characters", field="key"
            )
        scopes = list(scopes or [])
        if len(scopes) > 16 or any(not 1 <= len(s) <= 64 for s in scopes):
            raise ValidationError("scopes: at most 16, each 1-64 characters", field="scopes")
        now = utcnow()
        if expires_at is not None and expires_at <= now:
            raise ValidationError("expiresAt must be in the future", field="expiresAt")
        key_id = new_id("key")
        name = name or f"key-{int(now.timestamp())}"
        with self.db.transaction() as cur:
            require_tenant(cur, tenant_id)
            cur.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                [
                    tenant_id,
                    key_id,
                    name,
                    raw[:KEY_PREFIX_LEN],
                    self.hash(raw),
                    orjson.dumps(scopes).decode(),
                    expires_at,
                    now,
                ],
            )
        return ApiKey(
            key_id, tenant_id, name, raw[:KEY_PREFIX_LEN], tuple(scopes), expires_at, now, None
        ), raw

    def list(self, tenant_id: str) -> list[ApiKey]:
        rows = (
            self.db.cursor()
            .execute(
                "SELECT id, tenant_id, name, prefix, scopes, expires_at, created_at, revoked_at "
                "FROM api_keys WHERE tenant_id = ? AND revoked_at IS NULL ORDER BY id DESC",
                [tenant_id],
            )
            .fetchall()
        )
        return [self._key(r) for r in rows]

    def revoke(self, tenant_id: str, key_id: str, reason: str | None = None) -> None:
        with self.db.transaction() as cur:
            found = cur.execute(
                "SELECT 1 FROM api_keys WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL",
                [tenant_id, key_id],
            ).fetchall()
            found = found[0] if found else None
            if found is None:
                raise NotFoundError(f"API key {key_id!r} not found", field="id")
            cur.execute(
                "UPDATE api_keys SET revoked_at = ?, revoke_reason = ? "
                "WHERE tenant_id = ? AND id = ?",
                [utcnow(), reason, tenant_id, key_id],
            )

    def active_hashes(self) -> list[tuple[str, str, str, datetime | None]]:
        """(tenant_id, key_id, key_hash, expires_at) of every live key, for the auth cache."""
        return (
            self.db.cursor()
            .execute(
                "SELECT tenant_id, id, key_hash, expires_at FROM api_keys WHERE revoked_at IS NULL"
            )
            .fetchall()
        )

    def verify(self, tenant_id: str, raw_key: str) -> ApiKey | None:
        """The key record if ``raw_key`` is a live key of ``tenant_id`` (constant-time compare)."""
        digest = self.hash(raw_key)
        rows = (
            self.db.cursor()
            .execute(
                "SELECT id, tenant_id, name, prefix, scopes, expires_at, created_at, revoked_at, "
                "key_hash FROM api_keys WHERE tenant_id = ? AND revoked_at IS NULL",
                [tenant_id],
            )
            .fetchall()
        )
        now = utcnow()
        match = None
        for row in rows:
            if hmac.compare_digest(row[8], digest) and (row[5] is None or row[5] > now):
                match = row
        return None if match is None else self._key(match[:8])

    @staticmethod
    def _key(row: tuple) -> ApiKey:
        return ApiKey(
            row[0], row[1], row[2], row[3], tuple(orjson.loads(row[4])), row[5], row[6], row[7]
        )
