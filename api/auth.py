"""API-key authentication from an in-memory cache of the active key hashes.

The cache holds, per tenant, each live key's HMAC-SHA256 digest (under the pepper), expiry
and scopes. It is filled from the store at start and updated in the same call that creates
or revokes a key, so a revoked key fails at once; expiry is checked on every request. A key
authenticates only for the tenant it was minted in. Digests are compared in constant time.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from engine.errors import ForbiddenError, UnauthorizedError
from engine.store import utcnow


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and the key it used."""

    tenant_id: str
    key_id: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class _Entry:
    key_id: str
    digest: str
    expires_at: datetime | None
    scopes: tuple[str, ...]


class KeyCache:
    def __init__(
        self,
        hasher: Callable[[str], str],
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._hash = hasher
        self._now = now
        self._by_tenant: dict[str, tuple[_Entry, ...]] = {}
        self._lock = threading.Lock()

    def load(
        self, rows: Iterable[tuple[str, str, str, datetime | None, tuple[str, ...]]]
    ) -> None:
        """Replace the cache with ``(tenant_id, key_id, digest, expires_at, scopes)`` rows."""
        by_tenant: dict[str, list[_Entry]] = {}
        for tenant_id, key_id, digest, expires_at, scopes in rows:
            by_tenant.setdefault(tenant_id, []).append(_Entry(key_id, digest, expires_at,
                                                              tuple(scopes)))
        with self._lock:
            self._by_tenant = {t: tuple(v) for t, v in by_tenant.items()}

    def add(
        self,
        tenant_id: str,
        key_id: str,
        digest: str,
        expires_at: datetime | None,
        scopes: tuple[str, ...],
    ) -> None:
        with self._lock:
            entries = self._by_tenant.get(tenant_id, ())
            self._by_tenant[tenant_id] = (*entries, _Entry(key_id, digest, expires_at, scopes))

    def remove(self, tenant_id: str, key_id: str) -> None:
        with self._lock:
            entries = self._by_tenant.get(tenant_id, ())
            self._by_tenant[tenant_id] = tuple(e for e in entries if e.key_id != key_id)

    def verify(self, tenant_id: str, raw_key: str) -> Principal | None:
        """The principal when ``raw_key`` is a live key of ``tenant_id``, else None."""
        digest = self._hash(raw_key)
        now = self._now()
        found = None
        for entry in self._by_tenant.get(tenant_id, ()):
            if hmac.compare_digest(entry.digest, digest) and (
                entry.expires_at is None or entry.expires_at > now
            ):
                found = entry
        if found is None:
            return None
        return Principal(tenant_id, found.key_id, found.scopes)


def credentials(headers: dict[str, str] | object) -> tuple[str | None, str | None]:
    """``(tenant id, raw key)`` from ``x-tenant-id`` and ``x-api-key`` or a Bearer token."""
    get = headers.get  # type: ignore[attr-defined]
    tenant = get("x-tenant-id")
    key = get("x-api-key")
    if not key:
        auth = get("authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
    return (tenant or None), (key or None)


def authenticate(cache: KeyCache, tenant_id: str | None, raw_key: str | None) -> Principal:
    """Check credentials; raise 401 (missing/invalid) or 403 (scoped key) otherwise."""
    if not tenant_id:
        raise UnauthorizedError("the x-tenant-id header is required", field="x-tenant-id")
    if not raw_key:
        raise UnauthorizedError(
            "an API key is required: send x-api-key: <key> or Authorization: Bearer <key>",
            field="x-api-key",
        )
    principal = cache.verify(tenant_id, raw_key)
    if principal is None:
        raise UnauthorizedError(
            "invalid API key for this tenant (unknown, revoked, expired or minted for "
            "another tenant)",
            field="x-api-key",
        )
    if principal.scopes:
        raise ForbiddenError(
            f"this key is limited to the scopes {list(principal.scopes)}; the decisioning "
            "API needs a full-access key (created without scopes)",
            field="scopes",
        )
    return principal
