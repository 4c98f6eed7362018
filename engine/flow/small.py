"""Small calls after their one collect: order the few rows, count the funnel, render content.

At K = 1 every Polars operator's fixed cost counts, so the plan of a small call ends with the
whole (small) candidate frame and its flags; selection, order and funnel counts are numpy on
those rows, and content is assembled in Python (``ResponseNode.render``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from engine.flow import columns as c
from engine.flow.nodes.rank import MAX_OFFERS
from engine.flow.nodes.response import ResponseNode

FUNNEL_COLUMNS = ("candidateCount", "afterQualification", "afterContactPolicy", "finalCount")
Counts = pl.DataFrame | dict[str, Any]  # _req + funnel columns (frame or numpy arrays)


def finish(
    response: ResponseNode | None, frame: pl.DataFrame, rows: np.ndarray | None = None
) -> tuple[pl.DataFrame, Counts | None]:
    """Small calls, after the collect: order the few rows (numpy, no query) and assemble
    their content in Python."""
    if rows is None:
        rows = np.arange(frame.height)
    if rows.size > 1:
        keys = [frame.get_column(n).to_numpy()[rows] for n in ("rank", "slot", "request_index")]
        rows = rows[np.lexsort(keys)]
    if rows.size != frame.height or rows.size > 1:
        frame = frame[pl.Series(rows.astype(np.uint32))]  # one call; a list takes three
    if response is not None:
        content = response.render(frame)
        for name in response.value_columns:
            frame.drop_in_place(name)
        frame.replace_column(frame.get_column_index("content"), content)
    return frame, None


def finish_one_pass(
    response: ResponseNode | None, last_qualify: int, one_row_per_offer: bool, frame: pl.DataFrame
) -> tuple[pl.DataFrame, Counts | None]:
    """Funnel counts (numpy) and the selected rows of a one-pass small call."""
    req = frame.get_column(c.REQ_OUT).to_numpy().astype(np.int64)
    drop = frame.get_column(c.DROP).to_numpy()  # float with NaN where null (alive)
    selected = frame.get_column(c.SELECTED).to_numpy()
    alive = np.isnan(drop) if drop.dtype.kind == "f" else np.zeros(frame.height, dtype=bool)
    conditions = [alive | (drop >= 0), alive | (drop > last_qualify), alive, selected]
    # bincount, not np.unique: numpy's sort releases the GIL, and taking it back from a
    # busy event loop costs more than the sort
    size = int(req.max()) + 1 if req.size else 0
    keys = np.flatnonzero(np.bincount(req, minlength=size))
    counts: dict[str, Any] = {c.REQ: keys.astype(np.uint32)}
    if one_row_per_offer:
        for name, cond in zip(FUNNEL_COLUMNS, conditions, strict=True):
            counts[name] = np.bincount(req, weights=cond, minlength=size)[keys].astype(np.uint32)
    else:
        offer = req * MAX_OFFERS + frame.get_column(c.OFFER_ORDER).to_numpy()
        for name, cond in zip(FUNNEL_COLUMNS, conditions, strict=True):
            distinct = np.fromiter(set(offer[cond].tolist()), dtype=np.int64) // MAX_OFFERS
            counts[name] = np.bincount(distinct, minlength=size)[keys].astype(np.uint32)
    for name in (c.DROP, c.SELECTED, c.OFFER_ORDER):
        frame.drop_in_place(name)
    decisions, _ = finish(response, frame, np.flatnonzero(selected))
    return decisions, counts
