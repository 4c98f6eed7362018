"""The personalization object written as text reads as Polars' ``json_encode`` writes it."""

from __future__ import annotations

import orjson
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.flow.nodes.json_text import JsonLayout, json_value

FLOATS = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))
TEXTS = st.one_of(st.none(), st.text(alphabet=st.characters(codec="utf-8"), max_size=12))


@settings(max_examples=200, deadline=None)
@given(numbers=st.lists(FLOATS, min_size=1, max_size=8), texts=st.lists(TEXTS, min_size=1))
def test_values_are_written_like_json_encode(numbers, texts):
    for values, dtype in ((numbers, pl.Float64()), (texts, pl.String())):
        frame = pl.DataFrame({"v": values}, schema={"v": dtype})
        want = frame.select(pl.struct("v").struct.json_encode()).to_series().to_list()
        text = json_value(pl.col("v"), dtype)
        assert text is not None
        got = frame.select(pl.concat_str([pl.lit('{"v":'), text, pl.lit("}")])).to_series()
        assert got.to_list() == want
        for doc, value in zip(got.to_list(), values, strict=True):
            assert orjson.loads(doc) == {"v": value}


def test_layout_puts_customer_values_between_offer_segments():
    layout = JsonLayout(
        {"a": ["stars", "line"], "b": ["hello"], "c": [], "d": ["points"]},
        static={"line"},
        prefix="p.",
    )
    table = pl.DataFrame(
        {
            "offer.categoryId": ["a", "b", "c", None, "d", "d", "a"],
            "p.line": ['Ends "soon"', None, None, None, None, None, "x"],
        }
    )
    segments = layout.segments(table.schema)
    assert segments is not None
    # each field is null outside its own category (numbers of a and d share one conversion)
    frame = table.with_columns(segments).with_columns(
        pl.Series("p.stars", [20.0, None, None, None, None, None, None]),
        pl.Series("p.hello", [None, "Hi\nAna", None, None, None, None, None]),
        pl.Series("p.points", [None, None, None, None, 7.5, None, None]),
    )
    text = layout.expr(frame.schema)
    assert text is not None
    assert frame.select(text).to_series().to_list() == [
        '{"stars":20.0,"line":"Ends \\"soon\\""}',
        '{"hello":"Hi\\nAna"}',
        "{}",
        "{}",
        '{"points":7.5}',
        '{"points":null}',
        '{"stars":null,"line":"x"}',
    ]


def test_types_it_cannot_write_fall_back():
    assert json_value(pl.col("d"), pl.Date()) is None
    layout = JsonLayout({"a": ["when"]}, static={"when"}, prefix="p.")
    assert layout.segments({"p.when": pl.Date(), "offer.categoryId": pl.String()}) is None
