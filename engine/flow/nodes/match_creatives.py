"""``match_creatives``: which creative each candidate ships with (spec §9.3).

Only active creatives on active channels take part (static, once per compiled flow). Per
call a creative must match the request: channel type (``request.channel``), channel id
(``request.channelId``), the slot's placement (id or slot type) by ``placementMatchMode``
(``exact``: that placement only, no-op when none is requested; ``any``: also creatives
without a placement; ``none``: no placement filter), and not be in ``excludeCreatives``.

With ``requireCreative: false`` an offer none of whose creatives match stays a candidate
with a null creative (the static table carries one creative-less row per offer for that).
"""

from __future__ import annotations

import polars as pl

from engine.catalog import Catalog
from engine.flow import columns as c
from engine.flow.configs import MatchCreativesConfig
from engine.flow.nodes.base import Call, Node
from engine.flow.nodes.rank import offer_group

NO_CREATIVE_PREF = 2**31 - 1


def active_creatives(catalog: Catalog) -> pl.DataFrame:
    """Active creatives on active channels, with channel and placement columns."""
    channels = catalog.channels.filter(pl.col("channel.status") == "active")
    placements = catalog.placements.drop("channel.id")
    return (
        catalog.creatives.filter(pl.col("creative.status") == "active")
        .join(channels, on=c.CHANNEL_ID, how="inner")
        .join(placements, on=c.PLACEMENT_ID, how="left")
        .with_columns(
            # best creative of an offer: weight desc, then id asc (static order)
            pl.struct(-pl.col("creative.weight"), pl.col(c.CREATIVE_ID))
            .rank("ordinal")
            .cast(pl.Int64)
            .alias(c.CREATIVE_PREF)
        )
    )


class MatchCreativesNode(Node):
    config: MatchCreativesConfig

    def candidate_table(self, offers: pl.DataFrame, creatives: pl.DataFrame) -> pl.DataFrame:
        """offer x creative pairs (+ one creative-less row per offer when not required)."""
        pairs = offers.join(creatives, on=c.OFFER_ID, how="inner")
        if self.config.requireCreative:
            return pairs
        bare = offers.with_columns(pl.lit(NO_CREATIVE_PREF, dtype=pl.Int64).alias(c.CREATIVE_PREF))
        return pl.concat([pairs, bare], how="diagonal_relaxed")

    def predicate(self, call: Call) -> pl.Expr:
        """Creative rows that match the request (creative-less rows pass; see ``superseded``)."""
        req_type, req_id = pl.col(c.R_CHANNEL), pl.col(c.R_CHANNEL_ID)
        ok = (req_type.is_null() | (pl.col("channel.type") == req_type)) & (
            req_id.is_null() | (pl.col(c.CHANNEL_ID) == req_id)
        )
        slot = pl.col(c.SLOT_PLACEMENT)
        exact = (pl.col(c.PLACEMENT_ID) == slot) | (pl.col("placement.slotType") == slot)
        mode = self.config.placementMatchMode
        if mode == "exact":
            ok &= slot.is_null() | exact
        elif mode == "any":
            ok &= slot.is_null() | exact | pl.col(c.PLACEMENT_ID).is_null()
        if c.R_EXCLUDE_CREATIVES in call.schema:
            excluded = pl.col(c.R_EXCLUDE_CREATIVES).list.contains(pl.col(c.CREATIVE_ID))
            ok &= ~excluded.fill_null(False)
        ok = ok.fill_null(False)
        if self.config.requireCreative:
            return ok
        return ok | pl.col(c.CREATIVE_ID).is_null()

    def superseded(self, multi_slot: bool) -> pl.Expr | None:
        """Marks (``_drop = -1``) the creative-less row of an offer that has a matching
        creative; it never counts and never ships."""
        if self.config.requireCreative:
            return None
        return self.cached(("superseded", multi_slot), lambda: self._superseded(multi_slot))

    def _superseded(self, multi_slot: bool) -> pl.Expr:
        bare = pl.col(c.CREATIVE_ID).is_null()
        matched = (~bare).any().over(offer_group(multi_slot))
        return (
            pl.when(bare & matched)
            .then(pl.lit(-1, dtype=pl.Int16))
            .otherwise(pl.col(c.DROP))
            .alias(c.DROP)
        )
