"""Which decision flow a request runs (spec §5.2).

1. an explicit flow key (``decisionFlowKey``, alias ``blueprintKey``) or flow id: it must
   exist and be runnable (active with a published version), else 404 naming it;
2. the most specific flow route: channel + placement, then channel only, then catch-all
   (higher ``priority`` first within a tier), skipping routes to flows that cannot run;
3. the default flow (``isDefault``), then the most recently updated runnable flow;
4. ``None`` when the tenant has no flow at all (the caller creates the Base NBA flow).

Pure: the caller passes the catalog snapshot and the request's channel and placement ids
(already resolved from channel types and placement keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.catalog import Catalog
from engine.errors import NotFoundError
from engine.flow.validate import runnable_config

NO_IDS: frozenset[str] = frozenset()


def _runnable(doc: Mapping[str, Any]) -> bool:
    """Whether the flow can run (active, with a published version)."""
    try:
        runnable_config(doc)
    except NotFoundError:
        return False
    return True


def resolve_flow(
    catalog: Catalog,
    *,
    flow_key: str | None = None,
    key_field: str = "decisionFlowKey",
    flow_id: str | None = None,
    channels: frozenset[str] = NO_IDS,
    placements: frozenset[str] = NO_IDS,
) -> dict[str, Any] | None:
    """The flow document a request runs, or ``None`` when the tenant has no flow.

    ``flow_key`` wins over ``flow_id`` (``key_field`` names it in a 404); ``channels`` and
    ``placements`` are the request's channel and placement ids, which pick a flow route.
    """
    if flow_key is not None:
        doc = catalog.flow_by_key(flow_key)
        if doc is None:
            raise NotFoundError(f"decision flow {flow_key!r} not found", field=key_field)
        runnable_config(doc)  # 404 naming the key when it cannot run
        return doc
    if flow_id is not None:
        doc = next((f for f in catalog.decision_flows if f["id"] == flow_id), None)
        if doc is None:
            raise NotFoundError(f"decision flow id {flow_id!r} not found",
                                field="decisionFlowId")
        runnable_config(doc)
        return doc

    routed = route_flow(catalog, channels, placements)
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


def route_flow(
    catalog: Catalog, channels: frozenset[str], placements: frozenset[str]
) -> dict[str, Any] | None:
    """The runnable flow of the most specific matching flow route: channel + placement
    (or any channel + placement), then channel only, then catch-all; ``None`` if none."""
    if not catalog.flow_routes:
        return None
    flows = {f["id"]: f for f in catalog.decision_flows}

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
