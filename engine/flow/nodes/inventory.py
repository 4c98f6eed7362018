"""``inventory``: which offers are candidates (spec §9.3, §10.7, §10.8).

Static part (once per compiled flow): scope (all / category / subcategory / explicit
``offerIds``, the whitelist bypassing the category scope), ``includeStatuses`` and the
stock hard constraint (``remainingStock == 0`` never ships). Per call: the schedule window
against ``as_of`` and the request's ``excludeOffers``. Mandatory offers stay in the frame
(flag ``offer.mandatory``) and are treated apart by the later nodes.
"""

from __future__ import annotations

import polars as pl

from engine.flow import columns as c
from engine.flow.configs import InventoryConfig
from engine.flow.history import epoch_us
from engine.flow.nodes.base import Call, CompileContext, Node


class InventoryNode(Node):
    config: InventoryConfig

    def select_offers(self, offers: pl.DataFrame) -> pl.DataFrame:
        cfg = self.config
        pred = pl.col("offer.status").is_in(cfg.includeStatuses)
        if cfg.offerIds:
            pred &= pl.col(c.OFFER_ID).is_in(cfg.offerIds)
        elif cfg.scope == "category":
            pred &= pl.col(c.CATEGORY_ID).is_in(cfg.categoryIds)
        elif cfg.scope == "subcategory":
            pred &= pl.col("offer.subCategoryId").is_in(cfg.subCategoryIds)
        stock = pl.col("offer.remainingStock")
        pred &= stock.is_null() | (stock > 0)
        return offers.filter(pred)

    def prepare(self, ctx: CompileContext) -> None:
        offers = ctx.catalog.offers
        self.scheduled = bool(
            offers.get_column("offer.startDate").is_not_null().any()
            or offers.get_column("offer.endDate").is_not_null().any()
        )

    def predicate(
        self, call: Call, *, schedule: bool = True, request_level: bool = True
    ) -> pl.Expr | None:
        """Per-call part: schedule window at ``as_of`` and the request's ``excludeOffers``."""
        preds = []
        if schedule and self.scheduled:
            as_of = pl.lit(epoch_us(call.as_of))
            start = pl.col("offer.startDate").dt.epoch("us")
            end = pl.col("offer.endDate").dt.epoch("us")
            preds.append((start.is_null() | (start <= as_of)) & (end.is_null() | (as_of < end)))
        if request_level and c.R_EXCLUDE_OFFERS in call.schema:
            excluded = pl.col(c.R_EXCLUDE_OFFERS).list.contains(pl.col(c.OFFER_ID))
            preds.append(~excluded.fill_null(False))
        return pl.all_horizontal(preds) if preds else None
