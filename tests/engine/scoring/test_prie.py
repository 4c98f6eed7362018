from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.scoring.prie import EPSILON, PrieWeights, impact_expr, prie


def _score(p, r, i, e, weights=PrieWeights()):
    frame = pl.DataFrame({"p": [p], "r": [r], "i": [i], "e": [e]})
    return frame.select(prie(pl.col("p"), pl.col("r"), pl.col("i"), pl.col("e"), weights)).item()


def test_default_weights_reference_value():
    assert _score(0.5, 1, 1, 1) == pytest.approx(0.5**0.4)
    assert _score(0.5, 1, 1, 1) == pytest.approx(0.7579, abs=1e-4)


def test_weighted_geometric_mean():
    w = PrieWeights(0.4, 0.2, 0.3, 0.1)
    expected = 0.6**0.4 * 0.9**0.2 * 0.3**0.3 * 0.8**0.1
    assert _score(0.6, 0.9, 0.3, 0.8, w) == pytest.approx(expected)


def test_zero_factor_with_positive_weight_zeroes_the_score():
    assert _score(0.0, 1, 1, 1) == 0.0
    assert _score(0.5, 1, 0.0, 1) == 0.0
    # a zero factor whose weight is zero is ignored
    assert _score(0.5, 1, 0.0, 1, PrieWeights(1.0, 0.0, 0.0, 0.0)) == pytest.approx(0.5)


def test_factors_are_clamped():
    assert _score(1e-12, 1, 1, 1, PrieWeights(1, 0, 0, 0)) == pytest.approx(EPSILON)
    assert _score(3.0, 1, 1, 1, PrieWeights(1, 0, 0, 0)) == 1.0


@settings(max_examples=60, deadline=None)
@given(
    p=st.floats(0.0, 1.0),
    r=st.floats(0.0, 1.0),
    i=st.floats(0.0, 1.0),
    e=st.floats(0.0, 1.0),
)
def test_all_weight_on_p_equals_p(p, r, i, e):
    got = _score(p, r, i, e, PrieWeights(1.0, 0.0, 0.0, 0.0))
    expected = 0.0 if p == 0 else max(p, EPSILON)
    assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=0.0)


def test_impact_normalisation():
    def impact(values, column):
        frame = pl.DataFrame(
            {"offer.businessValue": column}, schema={"offer.businessValue": pl.Float64}
        )
        return frame.select(impact_expr(pl.Series(values, dtype=pl.Float64))).to_series().to_list()

    assert impact([10.0, 80.0], [10.0, 80.0, None]) == [0.1, 0.8, 0.5]
    assert impact([100.0, 500.0, 1000.0], [100.0, 500.0, 1000.0]) == [0.1, 0.5, 1.0]
    assert impact([-5.0, 10.0], [-5.0]) == [0.0]
