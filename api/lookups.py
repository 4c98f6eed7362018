"""Dict views of a catalog snapshot for per-request lookups (built once per catalog version)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.catalog import Catalog


@dataclass(frozen=True)
class OutcomeType:
    classification: str
    category: str


@dataclass(frozen=True)
class CreativeRef:
    offer_id: str
    channel_id: str
    placement_id: str | None


@dataclass(frozen=True)
class CatalogLookups:
    version: int
    outcomes: dict[str, OutcomeType]
    creatives: dict[str, CreativeRef]
    offer_category: dict[str, str | None]
    implicit_channels: frozenset[str]
    channels_by_type: dict[str, frozenset[str]]
    placements_by_key: dict[str, frozenset[str]]  # placement id or slot type -> ids


def build_lookups(catalog: Catalog) -> CatalogLookups:
    def rows(frame: Any, *cols: str) -> list[tuple[Any, ...]]:
        return list(frame.select(cols).iter_rows())

    by_type: dict[str, set[str]] = {}
    for ch, ctype in rows(catalog.channels, "channel.id", "channel.type"):
        by_type.setdefault(ctype, set()).add(ch)
    by_key: dict[str, set[str]] = {}
    for pl_id, slot in rows(catalog.placements, "placement.id", "placement.slotType"):
        by_key.setdefault(pl_id, set()).add(pl_id)
        by_key.setdefault(slot, set()).add(pl_id)
    return CatalogLookups(
        version=catalog.version,
        outcomes={k: OutcomeType(cls, cat) for k, cls, cat in
                  rows(catalog.outcome_types, "key", "classification", "category")},
        creatives={cid: CreativeRef(oid, ch, pl) for cid, oid, ch, pl in
                   rows(catalog.creatives, "creative.id", "offer.id", "channel.id",
                        "placement.id")},
        offer_category=dict(rows(catalog.offers, "offer.id", "offer.categoryId")),
        implicit_channels=frozenset(
            ch for ch, mode in rows(catalog.channels, "channel.id", "channel.impressionMode")
            if mode == "implicit"
        ),
        channels_by_type={k: frozenset(v) for k, v in by_type.items()},
        placements_by_key={k: frozenset(v) for k, v in by_key.items()},
    )
