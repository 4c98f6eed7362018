"""Reading the interaction log page by page (``GET /api/v1/interaction-history``, spec §14.4),
and counts over it (``decisions_since``).

Keyset pagination, newest first: rows are ordered by ``id`` descending (ids are
time-ordered) and the next page is ``id < cursor``, so a page never shifts when new rows are
appended. Filters: ``customer_id``, ``offer_id`` (alias ``action_id``), ``creative_id``
(alias ``treatment_id``) and ``type``: ``recommendation``, ``impression`` or ``response``
(the outcome type's category) or else an outcome-type key (``click``). Offer and creative
names come from the tenant's catalog snapshot (in memory), not from a join per row.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from engine.errors import ValidationError
from engine.store.catalog_repo import Page
from engine.store.tenants import require_tenant

if TYPE_CHECKING:
    from engine.store.store import Store

MAX_LIMIT = 100
DEFAULT_LIMIT = 25
INTERACTION_TYPES = ("recommendation", "impression", "response")
_COLUMNS = (
    "id",
    "customer_id",
    "offer_id",
    "creative_id",
    "channel_id",
    "placement_id",
    "outcome",
    "classification",
    "direction",
    "ts",
    "value",
    "context",
    "recommendation_id",
    "experiment_key",
    "variant",
)


def _alias(primary: str | None, alias: str | None, name: str, alias_name: str) -> str | None:
    if primary is not None and alias is not None and primary != alias:
        raise ValidationError(
            f"{name} and its alias {alias_name} disagree ({primary!r} vs {alias!r})", field=name
        )
    return primary if primary is not None else alias


def interaction_history(
    store: Store,
    tenant_id: str,
    *,
    customer_id: str | None = None,
    offer_id: str | None = None,
    action_id: str | None = None,
    creative_id: str | None = None,
    treatment_id: str | None = None,
    type: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """One page of the tenant's interactions, newest first (``Page.to_dict()`` is the body)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    offer_id = _alias(offer_id, action_id, "offerId", "actionId")
    creative_id = _alias(creative_id, treatment_id, "creativeId", "treatmentId")
    cur = store.db.cursor()
    require_tenant(cur, tenant_id)
    catalog = store.load_catalog(tenant_id)
    impression_keys = [
        k
        for k, cat in catalog.outcome_types.select("key", "category").iter_rows()
        if cat == "impression"
    ]
    where, params = ["tenant_id = ?"], [tenant_id]
    for column, value in (
        ("customer_id", customer_id),
        ("offer_id", offer_id),
        ("creative_id", creative_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if type is not None:
        if type == "recommendation":
            where.append("outcome = 'recommendation'")
        elif type == "impression":
            where.append("outcome IN (SELECT unnest(?))")
            params.append(impression_keys or ["impression"])
        elif type == "response":
            where.append("outcome <> 'recommendation' AND outcome NOT IN (SELECT unnest(?))")
            params.append(impression_keys or ["impression"])
        else:
            where.append("outcome = ?")
            params.append(type)
    total = cur.execute(
        f"SELECT count(*) FROM interactions WHERE {' AND '.join(where)}", params
    ).fetchall()[0][0]
    if cursor is not None:
        where.append("id < ?")
        params.append(cursor)
    rows = cur.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM interactions WHERE {' AND '.join(where)} "
        "ORDER BY id DESC LIMIT ?",
        [*params, limit + 1],
    ).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    offers = {
        r[0]: r for r in catalog.offers.select("offer.id", "offer.name", "offer.status").iter_rows()
    }
    creatives = {
        r[0]: r for r in catalog.creatives.select("creative.id", "creative.name").iter_rows()
    }
    channels = dict(catalog.channels.select("channel.id", "channel.name").iter_rows())
    impressions = set(impression_keys)
    data = [
        _row(
            tenant_id, dict(zip(_COLUMNS, r, strict=True)), offers, creatives, channels, impressions
        )
        for r in rows
    ]
    return Page(data, int(total), limit, has_more, data[-1]["id"] if has_more else None)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(timespec="milliseconds") + "Z"


def _row(
    tenant_id: str,
    r: dict[str, Any],
    offers: dict[str, tuple],
    creatives: dict[str, tuple],
    channels: dict[str, str],
    impressions: set[str],
) -> dict[str, Any]:
    outcome = r["outcome"]
    if outcome == "recommendation":
        kind = "recommendation"
    elif outcome in impressions:
        kind = "impression"
    else:
        kind = "response"
    offer = offers.get(r["offer_id"])
    creative = creatives.get(r["creative_id"])
    return {
        "id": r["id"],
        "tenantId": tenant_id,
        "customerId": r["customer_id"],
        "offerId": r["offer_id"],
        "creativeId": r["creative_id"],
        "channelId": r["channel_id"],
        "placementId": r["placement_id"],
        "recommendationId": r["recommendation_id"],
        "interactionType": kind,
        "outcomeTypeKey": None if kind == "recommendation" else outcome,
        "outcome": r["classification"],
        "direction": r["direction"],
        "timestamp": _iso(r["ts"]),
        "value": r["value"],
        "context": orjson.loads(r["context"]) if r["context"] else None,
        "experimentKey": r["experiment_key"],
        "variant": r["variant"],
        "offer": None if offer is None else {"id": offer[0], "name": offer[1], "status": offer[2]},
        "creative": None
        if creative is None
        else {
            "id": creative[0],
            "name": creative[1],
            "channel": None
            if r["channel_id"] is None
            else {"id": r["channel_id"], "name": channels.get(r["channel_id"])},
        },
    }


def decisions_since(store: Store, tenant_id: str, since: datetime) -> int:
    """Recommend answers (their rank-1 recommendation rows) logged since ``since`` (naive
    UTC)."""
    return int(
        store.db.cursor()
        .execute(
            "SELECT count(*) FROM interactions WHERE tenant_id = ? AND outcome = "
            "'recommendation' AND rank = 1 AND ts >= ?",
            [tenant_id, since],
        )
        .fetchall()[0][0]
    )
