"""``rank``: the top candidates of each request slot (spec §9.3).

Per (request, slot): at most one creative per offer (best creative: weight desc, then id),
then order by mandatory first, score desc, offer priority desc, offer id asc and keep
``rank <= limit`` where limit = the slot's limit capped by ``maxCandidates``. Method
``diversity`` keeps at most ``maxPerCategory`` regular offers per category. Mandatory
offers are capped by ``flowConfig.mandatoryDailyCap`` (default 5).

Windows rank one Int64 key over one Int64 group key (``rank().over(...)``; struct keys and
multi-column groups are 5x slower). The key packs, from most to least significant:
not-eligible (1 bit), not-mandatory (1 bit), score descending quantized to 2^-30 (31 bits;
scores lie in [0, 1], so scores closer than 1e-9 tie and fall to the next criteria) and the
static offer order (priority desc, id asc; 20 bits). Ineligible rows sort after eligible
ones in every window, so the whole candidate frame stays one frame and the funnel counts
read the final flags (``_sel``). Multi-placement ``deduplicate`` resolves slots in order,
each excluding offers already taken by an earlier slot of the same request.
"""

from __future__ import annotations

import polars as pl

from engine.flow import columns as c
from engine.flow.configs import RankConfig
from engine.flow.nodes.base import Call, CompileContext, Node

ELIMINATED, OK, SELECTED = c.ELIMINATED, c.OK, c.SELECTED
KEY = "_key"  # the packed sort key without the eligibility bit (see ``sort_key``)
OFFER_BITS = 20
MAX_OFFERS = 2**OFFER_BITS
SCORE_STEPS = 2**30
CATEGORY_INDEX = "_cati"  # static: index of the offer's category (0 = none)


def eligible(eliminates: bool = True) -> pl.Expr:
    alive = pl.col(c.DROP).is_null()
    return alive & ~pl.col(ELIMINATED) if eliminates else alive


def base_key(mandatory: bool = True) -> pl.Expr:
    """Ascending Int64 key: not mandatory (left out when no offer is), score desc, static
    offer order."""
    q = (pl.col(c.SCORE).clip(0.0, 1.0) * SCORE_STEPS).round().cast(pl.Int64)
    key = ((SCORE_STEPS - q) * MAX_OFFERS) + pl.col(c.OFFER_ORDER)
    if mandatory:
        key = key + (~pl.col(c.MANDATORY).fill_null(False)).cast(pl.Int64) * 2**51
    return key


def sort_key(first: pl.Expr | None, key: pl.Expr) -> pl.Expr:
    """``key`` (see ``base_key``) with ``not first`` as the top bit."""
    return key if first is None else key + (~first).cast(pl.Int64) * 2**52


def request_group(multi_slot: bool) -> pl.Expr:
    """One integer per (request, slot)."""
    if not multi_slot:
        return pl.col(c.REQ)
    return pl.col(c.REQ).cast(pl.Int64) * 64 + pl.col(c.SLOT).cast(pl.Int64)


def offer_group(multi_slot: bool) -> pl.Expr:
    """One Int64 per (request, slot, offer)."""
    return request_group(multi_slot).cast(pl.Int64) * MAX_OFFERS + pl.col(c.OFFER_ORDER)


def best_creative(ok: pl.Expr | None, multi_slot: bool) -> pl.Expr:
    """True on the best creative (static preference) among ``ok`` rows of each offer."""
    pref = pl.col(c.CREATIVE_PREF)
    if ok is None:
        return pref == pref.min().over(offer_group(multi_slot))
    return ok & (pref == pl.when(ok).then(pref).min().over(offer_group(multi_slot)))


class RankNode(Node):
    config: RankConfig

    def prepare(self, ctx: CompileContext) -> None:
        self.mandatory_cap = int(ctx.flow_config.get("mandatoryDailyCap", 5))
        self.has_mandatory = bool(ctx.catalog.offers.get_column(c.MANDATORY).any())
        self.eliminates = True  # cleared by the compiler when the score cannot eliminate
        self.multi_creative = True  # cleared by the compiler when no offer has two rows
        self.n_categories = ctx.catalog.offers.get_column(c.CATEGORY_ID).n_unique() + 1

    def _limit(self) -> pl.Expr:
        limit = pl.col(c.SLOT_LIMIT)
        if self.config.maxCandidates is not None:
            limit = pl.min_horizontal(limit, pl.lit(self.config.maxCandidates))
        return limit

    def _caps(
        self, group: pl.Expr | None, ok: pl.Expr | None, base: pl.Expr | None = None
    ) -> list[pl.Expr]:
        """Diversity and mandatory caps; ``group`` None = a single (request, slot)."""
        key = sort_key(ok, base_key(self.has_mandatory) if base is None else base)
        mandatory = pl.col(c.MANDATORY).fill_null(False)
        mand = mandatory.cast(pl.Int64)
        caps = []
        if self.config.method == "diversity" and self.has_mandatory:
            per_cat = pl.col(CATEGORY_INDEX) * 2 + mand
            if group is not None:
                per_cat = group.cast(pl.Int64) * (2 * self.n_categories) + per_cat
            caps.append(
                mandatory | (key.rank("ordinal").over(per_cat) <= self.config.maxPerCategory)
            )
        elif self.config.method == "diversity":
            per_cat = pl.col(CATEGORY_INDEX)
            if group is not None:
                per_cat = group.cast(pl.Int64) * self.n_categories + per_cat
            caps.append(key.rank("ordinal").over(per_cat) <= self.config.maxPerCategory)
        if self.has_mandatory:
            per_kind = key.rank("ordinal").over(
                mand if group is None else group.cast(pl.Int64) * 2 + mand
            )
            caps.append(~mandatory | (per_kind <= self.mandatory_cap))
        return caps

    def _flag_steps(self, multi_slot: bool, best_done: bool, single: bool) -> list[list[pl.Expr]]:
        group = None if single else request_group(multi_slot)
        ok = eligible(self.eliminates)
        if self.multi_creative and not best_done:
            ok = best_creative(ok, multi_slot)
        # the packed key is read up to three times: compute it once
        steps = [[base_key(self.has_mandatory).alias(KEY)]]
        key = pl.col(KEY)
        caps = self._caps(group, ok, key)
        if caps:
            steps.append([pl.all_horizontal(ok, *caps).alias(OK)])
            ok = pl.col(OK)
        rank = sort_key(ok, key).rank("ordinal")
        if group is None:  # one (request, slot): no window, recomputing beats another step
            rank = rank.cast(pl.Int32)
            steps.append([rank.alias(c.RANK), (ok & (rank <= self._limit())).alias(SELECTED)])
            return steps
        steps.append([rank.over(group).cast(pl.Int32).alias(c.RANK)])  # the window runs once
        steps.append([(ok & (pl.col(c.RANK) <= self._limit())).alias(SELECTED)])
        return steps

    def flag_steps(
        self, multi_slot: bool, best_done: bool, single: bool = False
    ) -> list[list[pl.Expr]]:
        key = ("flags", multi_slot, best_done, single)
        return self.cached(key, lambda: self._flag_steps(multi_slot, best_done, single))

    def flags(
        self, lf: pl.LazyFrame, *, multi_slot: bool, best_done: bool, single: bool = False
    ) -> pl.LazyFrame:
        """Adds ``_rank`` and ``_sel`` to every row (no filtering). ``single``: the frame
        holds one (request, slot), so the final rank needs no window."""
        for step in self.flag_steps(multi_slot, best_done, single):
            lf = lf.with_columns(step)
        return lf

    def _top(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        group = request_group(False)
        caps = self._caps(group, None)
        if caps:
            lf = lf.filter(pl.all_horizontal(caps))
        rank = base_key(self.has_mandatory).rank("ordinal").over(group).cast(pl.Int32)
        return lf.with_columns(rank.alias(c.RANK)).filter(pl.col(c.RANK) <= self._limit())

    def deduplicated(self, lf: pl.LazyFrame, slots: int, best_done: bool) -> pl.LazyFrame:
        """Multi-placement with ``deduplicate``: slot by slot, skipping offers already taken
        by an earlier slot of the same request (requests without the flag are unaffected)."""
        ok = eligible(self.eliminates)
        if self.multi_creative and not best_done:
            ok = best_creative(ok, True)
        lf = lf.filter(ok)
        parts: list[pl.LazyFrame] = []
        taken: pl.LazyFrame | None = None
        for slot in range(slots):
            part = lf.filter(pl.col(c.SLOT) == slot)
            if taken is not None:
                part = part.join(taken, on=[c.REQ, c.OFFER_ID], how="anti")
            part = self._top(part)
            parts.append(part)
            mine = part.filter(pl.col(c.DEDUPE)).select(c.REQ, c.OFFER_ID)
            taken = mine if taken is None else pl.concat([taken, mine])
        return pl.concat(parts)

    def apply(self, lf: pl.LazyFrame, call: Call) -> pl.LazyFrame:
        return self.flags(lf, multi_slot=True, best_done=False)
