"""Per-signature candidate tables: creative matching done once, reused by every call.

Which (offer, creative) rows a request can get depends only on its *match key*: channel
type, channel id, placement, excluded creatives and offers, and which scheduled offers are
inside their window at ``as_of``; never on the customer. When every request of a call shares
one key (a realtime call of one customer, or a batch template), the matched rows with each
offer's best creative are computed once, cached on the compiled flow, and the call's plan
is a plain ``requests x matched`` cross join: no per-call matching filter or window.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from engine.flow import columns as c
from engine.flow.history import epoch_us
from engine.flow.nodes.base import Call
from engine.flow.request import MatchKey

if TYPE_CHECKING:
    from engine.flow.compiled import CompiledFlow

CACHE_SIZE = 256
_LIST = pl.List(pl.String())


def schedule_key(flow: CompiledFlow, as_of: datetime) -> tuple[str, ...]:
    """Scheduled offers outside their window at ``as_of`` (usually none)."""
    now = epoch_us(as_of)
    return tuple(
        oid
        for oid, start, end in flow.schedules
        if (start is not None and start > now) or (end is not None and now >= end)
    )


class MatchedTables:
    """LRU of the matched tables of one static table, by (match key, schedule key)."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[Any, ...], pl.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, flow: CompiledFlow, table: pl.DataFrame, key: MatchKey, as_of: datetime
    ) -> pl.DataFrame:
        full = (key, schedule_key(flow, as_of))
        with self._lock:
            hit = self._items.get(full)
            if hit is not None:
                self._items.move_to_end(full)
                return hit
        matched = _build(flow, table, key, as_of)
        self._put(full, matched)
        return matched

    def union(
        self, flow: CompiledFlow, table: pl.DataFrame, keys: tuple[MatchKey, ...], as_of: datetime
    ) -> pl.DataFrame:
        """The matched rows of several keys, each tagged with its key's index (``_mgroup``)."""
        full = ("union", keys, schedule_key(flow, as_of))
        with self._lock:
            hit = self._items.get(full)
            if hit is not None:
                self._items.move_to_end(full)
                return hit
        tables = [self.get(flow, table, key, as_of) for key in keys]
        tag = np.repeat(np.arange(len(tables), dtype=np.uint32), [t.height for t in tables])
        union = pl.concat(tables).with_columns(pl.Series(c.MATCH_GROUP, tag))
        self._put(full, union)
        return union

    def _put(self, key: tuple[Any, ...], frame: pl.DataFrame) -> None:
        with self._lock:
            self._items[key] = frame
            while len(self._items) > CACHE_SIZE:
                self._items.popitem(last=False)


def _build(flow: CompiledFlow, table: pl.DataFrame, key: MatchKey, as_of: datetime) -> pl.DataFrame:
    channel, channel_id, placement, exclude_creatives, exclude_offers = key
    request = pl.DataFrame(
        [(channel, channel_id, placement, list(exclude_creatives), list(exclude_offers))],
        schema={
            c.R_CHANNEL: pl.String(),
            c.R_CHANNEL_ID: pl.String(),
            c.SLOT_PLACEMENT: pl.String(),
            c.R_EXCLUDE_CREATIVES: _LIST,
            c.R_EXCLUDE_OFFERS: _LIST,
        },
        orient="row",
    )
    schema = {**request.schema, **table.schema}
    call = Call(as_of=as_of, evidence=None, schema=schema, schema_key=(), trace=False)
    lf = request.lazy().join(table.lazy(), how="cross")
    preds = [flow.inventory.predicate(call), flow.match.predicate(call)]
    lf = lf.filter(pl.all_horizontal([p for p in preds if p is not None]))
    if flow.early_best:
        pref = pl.col(c.CREATIVE_PREF)
        lf = lf.filter(pref == pref.min().over(c.OFFER_ORDER))
    return lf.drop(request.columns).collect(engine="in-memory")
