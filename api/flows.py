"""Which decision flow a Recommend runs (spec §5.2).

1. an explicit ``decisionFlowKey`` (alias ``blueprintKey``) or ``decisionFlowId``: it must
   exist and be runnable (active with a published version), else 404 naming it;
2. the most specific flow route: channel + placement, then channel only, then catch-all
   (higher ``priority`` first within a tier), skipping routes to flows that cannot run;
3. the default flow (``isDefault``), then the most recently updated runnable flow;
4. ``None`` when the tenant has no flow at all (the caller creates the Base NBA flow).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api.lookups import CatalogLookups
from api.schemas import RecommendRequest
from engine.catalog import Catalog
from engine.errors import NotFoundError
from engine.flow import runnable_config


def _runnable(doc: Mapping[str, Any]) -> bool:
    try:
        runnable_config(doc)
    except NotFoundError:
        return False
    return True


def resolve_flow(
    catalog: Catalog, lookups: CatalogLookups, body: RecommendRequest
) -> dict[str, Any] | None:
    key = body.decisionFlowKey or body.blueprintKey
    if key is not None:
        field = "decisionFlowKey" if body.decisionFlowKey else "blueprintKey"
        doc = catalog.flow_by_key(key)
        if doc is None:
            raise NotFoundError(f"decision flow {key!r} not found", field=field)
        runnable_config(doc)  # 404 naming the key when it cannot run
        return doc
    if body.decisionFlowId is not None:
        doc = next((f for f in catalog.decision_flows if f["id"] == body.decisionFlowId), None)
        if doc is None:
            raise NotFoundError(f"decision flow id {body.decisionFlowId!r} not found",
                                field="decisionFlowId")
        runnable_config(doc)
        return doc

    flows = {f["id"]: f for f in catalog.decision_flows}
    routed = _route(catalog, lookups, body, flows)
    if routed is not None:
        return routed
    runnable = [f for f in catalog.decision_flows if _runnable(f)]
    default = next((f for f in runnable if f.get("isDefault")), None)
    if default is not None:
        return default
    if runnable:
        return max(runnable, key=lambda f: (f.get("updatedAt") or "", f["id"]))
    if catalog.decision_flows:
        raise NotFoundError(
            "no runnable decision flow: publish a flow and set it active, or pass "
            "decisionFlowKey",
            field="decisionFlowKey",
        )
    return None


def _route(
    catalog: Catalog,
    lookups: CatalogLookups,
    body: RecommendRequest,
    flows: Mapping[str, dict[str, Any]],
) -> dict[str, Any] | None:
    if not catalog.flow_routes:
        return None
    channels: frozenset[str] = frozenset()
    if body.channelId is not None:
        channels = frozenset({body.channelId})
    elif body.channel is not None:
        channels = lookups.channels_by_type.get(body.channel, frozenset())
    placements: frozenset[str] = frozenset()
    slots = [body.placement] if body.placement else [p.placementId for p in body.placements or ()]
    for slot in slots:
        placements |= lookups.placements_by_key.get(slot, frozenset())

    def tier(route: Mapping[str, Any]) -> int | None:
        channel, placement = route.get("channelId"), route.get("placementId")
        if channel is None and placement is None:
            return 2
        if (channel is None or channel in channels) and placement in placements:
            return 0
        if channel in channels and placement is None:
            return 1
        return None

    ranked = []
    for order, route in enumerate(catalog.flow_routes):  # already priority desc
        level = tier(route)
        if level is not None:
            ranked.append((level, order, route))
    for _, _, route in sorted(ranked, key=lambda t: (t[0], t[1])):
        doc = flows.get(route["decisionFlowId"])
        if doc is not None and _runnable(doc):
            return doc
    return None
