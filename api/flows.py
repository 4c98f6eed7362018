"""Which decision flow a Recommend runs: the request's flow key, flow id, channel and
placements handed to ``engine.flow.routing.resolve_flow`` (spec §5.2).

Channel types and placement keys are turned into ids with the catalog lookups; a flow key
may come as ``decisionFlowKey`` or its alias ``blueprintKey`` (a 404 names the one sent).
"""

from __future__ import annotations

from typing import Any

from api.lookups import CatalogLookups
from api.schemas import RecommendRequest
from engine.catalog import Catalog
from engine.flow import routing


def resolve_flow(
    catalog: Catalog, lookups: CatalogLookups, body: RecommendRequest
) -> dict[str, Any] | None:
    channels: frozenset[str] = frozenset()
    if body.channelId is not None:
        channels = frozenset({body.channelId})
    elif body.channel is not None:
        channels = lookups.channels_by_type.get(body.channel, frozenset())
    placements: frozenset[str] = frozenset()
    slots = [body.placement] if body.placement else [p.placementId for p in body.placements or ()]
    for slot in slots:
        placements |= lookups.placements_by_key.get(slot, frozenset())
    return routing.resolve_flow(
        catalog,
        flow_key=body.decisionFlowKey or body.blueprintKey,
        key_field="decisionFlowKey" if body.decisionFlowKey else "blueprintKey",
        flow_id=body.decisionFlowId,
        channels=channels,
        placements=placements,
    )
