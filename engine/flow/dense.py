"""Ranking of a dense candidate frame: K requests x the same M matched rows.

When every request of a large call shares one match key (a batch template), has one slot and
gets one row per offer, the candidate frame is a K x M matrix: request k, matched row m. The
plan then stops after scoring and collects only what ranking reads (eligibility, the packed
sort key, category, mandatory flag, score); numpy sorts each row of the matrix and counts
earlier peers per category with running sums (no window over K groups), the funnel counts are
row sums, and the selected cells, already in rank order, are gathered from the request frame
and the matched table for phase 3.
The flags are those of ``RankNode.flag_steps`` (tests compare both shapes):

- a cell is eligible when no phase-1 node dropped it (and the score did not eliminate it);
- diversity: at most ``maxPerCategory`` eligible regular offers per category, best keys first;
- mandatory cap: at most ``mandatoryDailyCap`` eligible mandatory offers, best keys first;
- rank = 1 + the number of cells within the caps with a smaller key; selected when within
  the caps and rank <= the slot's limit (capped by ``maxCandidates``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from engine.flow import columns as c
from engine.flow.nodes.rank import CATEGORY_INDEX, KEY, RankNode, base_key, eligible

MAX_WIDTH = 32  # matched rows per request up to which a call ranks densely
BLOCK_CELLS = 1 << 22  # K x M x M booleans per numpy block (pairwise peer counts)
MAX_PARTS = 16  # categories (x 2 with mandatory offers) counted one by one, else pairwise
DROP_ALIVE = np.iinfo(np.int32).max  # a null _drop (still alive) as an integer


@dataclass(frozen=True)
class Matrix:
    """The collected scoring columns of a dense call, as K x M arrays."""

    drop: np.ndarray  # int32, DROP_ALIVE where the candidate is alive
    eligible: np.ndarray  # bool
    key: np.ndarray  # int64, unique within a row
    category: np.ndarray | None  # int64 (diversity only)
    mandatory: np.ndarray | None  # bool (catalogs with mandatory offers only)
    score: np.ndarray  # float64


def fits(matched: pl.DataFrame) -> bool:
    """Whether a call over ``matched`` can rank densely: a few rows, one per offer."""
    if not 0 < matched.height <= MAX_WIDTH:
        return False
    return not matched.get_column(c.OFFER_ID).is_duplicated().any()


def columns(rank: RankNode) -> list[pl.Expr]:
    """What the dense ranking reads from the scored candidate frame."""
    out = [
        pl.col(c.REQ),
        pl.col(c.TROW),
        pl.col(c.DROP).cast(pl.Int32).fill_null(DROP_ALIVE),
        eligible(rank.eliminates).alias("_eligible"),
        base_key(rank.has_mandatory).alias(KEY),
        pl.col(c.SCORE),
    ]
    if rank.config.method == "diversity":
        out.append(pl.col(CATEGORY_INDEX))
    if rank.has_mandatory:
        out.append(pl.col(c.MANDATORY).fill_null(False))
    return out


def matrix(scored: pl.DataFrame, k: int, req0: int, trows: np.ndarray, rank: RankNode) -> Matrix:
    """Arrange the collected rows as K x M arrays, whatever order the plan produced."""
    m = trows.shape[0]
    if scored.height != k * m:
        raise AssertionError(f"dense call: {scored.height} rows for {k} x {m} cells")
    position = np.full(int(trows.max()) + 1, -1, dtype=np.int64)
    position[trows] = np.arange(m)
    req = scored.get_column(c.REQ).to_numpy().astype(np.int64) - req0
    cell = req * m + position[scored.get_column(c.TROW).to_numpy()]
    order: np.ndarray | None = None
    if not np.array_equal(cell, np.arange(k * m)):  # the plan usually keeps request order
        order = np.empty(k * m, dtype=np.int64)
        order[cell] = np.arange(k * m)

    def grid(name: str) -> np.ndarray:
        values = scored.get_column(name).to_numpy()
        return (values if order is None else values[order]).reshape(k, m)

    return Matrix(
        drop=grid(c.DROP),
        eligible=grid("_eligible"),
        key=grid(KEY),
        category=grid(CATEGORY_INDEX) if CATEGORY_INDEX in scored.columns else None,
        mandatory=grid(c.MANDATORY) if c.MANDATORY in scored.columns else None,
        score=grid(c.SCORE),
    )


@dataclass(frozen=True)
class Ranked:
    """Each request's cells in rank order: ``order[k, j]`` is the matched row at sorted
    position j, ``position`` its rank among the cells within the caps, ``selected``."""

    order: np.ndarray
    position: np.ndarray
    selected: np.ndarray

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(request, matched row, rank) of the selected cells, by request then rank."""
        row, at = np.nonzero(self.selected)  # row-major: ranks ascend within a request
        return row, self.order[row, at], self.position[row, at]


def flags(mx: Matrix, limit: np.ndarray, rank: RankNode) -> Ranked:
    """The rank flags of every cell; ``limit``: each request's slot limit (K,)."""
    if rank.config.maxCandidates is not None:
        limit = np.minimum(limit, rank.config.maxCandidates)
    # each row in sort order: eligible cells by key, then the others
    order = np.argsort(np.where(mx.eligible, mx.key, mx.key + (1 << 60)), axis=1)

    def sorted_(a: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, order, axis=1)

    ok = sorted_(mx.eligible)
    mand = None if mx.mandatory is None else sorted_(mx.mandatory)
    if rank.config.method == "diversity" and mx.category is not None:
        part = sorted_(mx.category)
        if mand is not None:
            part = part * 2 + mand
        within = _earlier_peers(part, ok) < rank.config.maxPerCategory
        ok = ok & (within | mand if mand is not None else within)
    if mand is not None:
        within = _earlier_peers(mand.astype(np.int64), ok) < rank.mandatory_cap
        ok = ok & (~mand | within)
    position = np.cumsum(ok, axis=1, dtype=np.int32)  # 1 + earlier cells within the caps
    return Ranked(order, position, ok & (position <= limit[:, None]))


def _earlier_peers(part: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """For each cell of rows in sort order: how many earlier ``ok`` cells of its row share
    its ``part`` (a small non-negative integer)."""
    k, m = part.shape
    parts = int(part.max()) + 1 if part.size else 1
    out = np.zeros((k, m), dtype=np.int32)
    if parts <= MAX_PARTS:  # a running count per part value, over contiguous K x M arrays
        for value in range(parts):
            mine = part == value
            hits = mine & ok
            before = np.cumsum(hits, axis=1, dtype=np.int32) - hits
            np.copyto(out, before, where=mine)
        return out
    earlier = np.tri(m, k=-1, dtype=bool)  # pairwise: earlier cells of the same part
    block = max(1, BLOCK_CELLS // (m * m))
    for s in range(0, k, block):
        p, o = part[s : s + block], ok[s : s + block]
        same = (p[:, :, None] == p[:, None, :]) & o[:, None, :] & earlier
        out[s : s + block] = same.sum(axis=2)
    return out


def counts(mx: Matrix, ranked: Ranked, last_qualify: int, req: np.ndarray) -> dict[str, Any]:
    """Funnel counts per request (one cell per offer: counts are row sums)."""
    drop = mx.drop
    alive = drop == DROP_ALIVE
    conditions = {
        "candidateCount": alive | (drop >= 0),
        "afterQualification": alive | (drop > last_qualify),
        "afterContactPolicy": alive,
        "finalCount": ranked.selected,
    }
    out: dict[str, Any] = {c.REQ: req}
    for name, cond in conditions.items():
        out[name] = cond.sum(axis=1).astype(np.uint32)
    return out


def picked(
    requests: pl.DataFrame,
    matched: pl.DataFrame,
    mx: Matrix,
    ranked: Ranked,
    wanted: set[str],
) -> pl.DataFrame:
    """The selected cells, ordered by request and rank: the ``wanted`` request and matched
    columns, score and rank."""
    row, col, rank = ranked.cells()
    left = requests.select([n for n in requests.columns if n in wanted])[row]
    right = matched.select(
        [n for n in matched.columns if n in wanted and n not in left.columns]
    )[col]
    extra = pl.DataFrame(
        [pl.Series(c.SCORE, mx.score[row, col]), pl.Series(c.RANK, rank, dtype=pl.Int32)]
    )
    return pl.concat([left, right.drop(c.SCORE, c.RANK, strict=False), extra], how="horizontal")

