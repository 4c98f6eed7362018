"""The dense ranking (numpy, K x M cells) gives the window ranking's flags.

Random matrices with ties in score, ineligible cells, many or few categories (the running
count and the pairwise branch) and mandatory offers, ranked both ways.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.flow import columns as c
from engine.flow import dense
from engine.flow.configs import RankConfig
from engine.flow.nodes.rank import CATEGORY_INDEX, RankNode


def _node(
    method: str, mandatory: bool, categories: int, max_per_category: int, max_candidates: int
) -> RankNode:
    config = RankConfig(
        method=method, maxPerCategory=max_per_category, maxCandidates=max_candidates
    )
    node = RankNode(id="rank", index=5, type="rank", config=config)
    node.mandatory_cap = 2
    node.has_mandatory = mandatory
    node.eliminates = False
    node.multi_creative = False
    node.n_categories = categories
    return node


def _frame(rng: np.random.Generator, k: int, m: int, categories: int, mandatory: bool):
    cells = k * m
    return pl.DataFrame(
        {
            c.REQ: np.repeat(np.arange(k, dtype=np.uint32), m),
            c.TROW: np.tile(np.arange(m, dtype=np.uint32), k),
            c.DROP: pl.Series(
                np.where(rng.random(cells) < 0.2, 3, -9999), dtype=pl.Int16
            ).replace(-9999, None),
            c.SCORE: rng.integers(0, 4, cells) / 4,  # many ties: the offer order decides
            c.OFFER_ORDER: np.tile(rng.permutation(m) + 1, k).astype(np.int64),
            CATEGORY_INDEX: rng.integers(0, categories, cells).astype(np.int64),
            c.MANDATORY: (rng.random(cells) < 0.15) & mandatory,
            c.SLOT_LIMIT: np.repeat(rng.integers(1, m + 1, k).astype(np.int32), m),
        }
    )


@pytest.mark.parametrize("method", ["score", "diversity"])
@pytest.mark.parametrize("mandatory", [False, True])
@pytest.mark.parametrize("categories", [3, 40])
def test_dense_flags_equal_the_window_flags(method, mandatory, categories):
    rng = np.random.default_rng(categories + 2 * mandatory)
    k, m = 300, 12
    node = _node(method, mandatory, categories, max_per_category=2, max_candidates=6)
    frame = _frame(rng, k, m, categories, mandatory)
    window = node.flags(frame.lazy(), multi_slot=False, best_done=True).collect()

    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)  # any plan order
    scored = shuffled.select(dense.columns(node))
    mx = dense.matrix(scored, k, 0, np.arange(m), node)
    limit = frame.get_column(c.SLOT_LIMIT).to_numpy()[::m]
    row, col, rank = dense.flags(mx, limit, node).cells()

    want = window.filter(pl.col(c.SELECTED)).select(c.REQ, c.TROW, c.RANK).sort(c.REQ, c.RANK)
    got = pl.DataFrame(
        {
            c.REQ: row.astype(np.uint32),
            c.TROW: col.astype(np.uint32),
            c.RANK: rank.astype(np.int32),
        }
    )
    assert want.height > 0
    assert got.to_dicts() == want.to_dicts()
