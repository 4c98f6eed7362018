"""Golden values for operators, precedence, nulls, truthiness and types."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from engine.formula import compile
from tests.engine.formula.conftest import Value, Values


def test_spec_examples(values: Values, value: Value) -> None:
    frame = {"base_rate": [20.0], "customer.loyalty_score": [10]}
    assert values("base_rate * (1 - customer.loyalty_score * 0.01)", frame) == [18.0]
    assert values("19.99 - customer.loyalty_score * 0.05", frame) == [pytest.approx(19.49)]
    assert value("10 / 0") is None
    assert value("2 + 3 * 4") == 14.0
    names = {"attributes.first_name": ["Ann", None]}
    assert values('"Hi " + attributes.first_name', names) == ["Hi Ann", None]
    tiers = {"tier": ["gold", "silver", None]}
    assert values('tier == "gold" ? 0.15 : 0.10', tiers) == [0.15, 0.10, 0.10]
    assert values("amount > 1000", {"amount": [1500, 1000, None]}) == [1.0, 0.0, None]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2", 3.0), ("5 - 7", -2.0), ("6 * 7", 42.0), ("7 / 2", 3.5), ("7 % 3", 1.0),
        ("-7 % 3", 2.0), ("7 % -3", -2.0), ("7.5 % 2", 1.5), ("-(3)", -3.0), ("+4", 4.0),
        ("- -4", 4.0), ("1e3 + .5", 1000.5), ("10 / 4 * 2", 5.0), ("2 * 3 % 4", 2.0),
        ("(2 + 3) * 4", 20.0), ("2 - 3 - 4", -5.0), ("100 / 10 / 5", 2.0),
        ("10 / 0", None), ("0 / 0", None), ("-1 / 0", None), ("5 % 0", None),
        ("1e308 * 10", None), ("-1e308 - 1e308", None), ("1e308 + 1e308 - 1e308", None),
        ("1e-300 / 1e300", 0.0),
    ],
)  # fmt: skip
def test_arithmetic(value: Value, text: str, expected: float | None) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 == 1", 1.0), ("1 == 2", 0.0), ("1 != 2", 1.0), ("1 < 2", 1.0), ("2 < 1", 0.0),
        ("2 <= 2", 1.0), ("3 > 2", 1.0), ("2 >= 3", 0.0), ("0.1 + 0.2 == 0.3", 0.0),
        ('"a" == "a"', 1.0), ('"a" < "b"', 1.0), ('"B" < "a"', 1.0), ('"gold" != "Gold"', 1.0),
        ('"10" == 10', 1.0), ('"abc" == 1', None), ('2 > "10"', 0.0), ("1 + 1 == 2", 1.0),
        ("null == null", None), ("1 < null", None), ("(1 < 2) + (2 < 3)", 2.0),
        ("true == 1", 1.0), ("false", 0.0), ("true + true", 2.0),
    ],
)  # fmt: skip
def test_comparisons_return_one_or_zero(value: Value, text: str, expected: float | None) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 && 2", 1.0), ("1 && 0", 0.0), ("0 || 3", 1.0), ("0 || 0", 0.0), ("!0", 1.0),
        ("!5", 0.0), ("not 1", 0.0), ("1 and 0", 0.0), ("0 or 1", 1.0), ("!!7", 1.0),
        ('"" || 0', 0.0), ('"x" && 1', 1.0), ('"0" && 1', 1.0), ('!""', 1.0),
        ("null || 0", 0.0), ("!null", 1.0), ("null && 1", 0.0), ("-0.0 || 0", 0.0),
        ("0 ? 1 : 2", 2.0), ("0.001 ? 1 : 2", 1.0), ('"" ? 1 : 2', 2.0),
        ('" " ? 1 : 2', 1.0), ("null ? 1 : 2", 2.0), ("if(null, 1, 2)", 2.0),
        ("1 ? 2 : 3 ? 4 : 5", 2.0), ("0 ? 2 : 0 ? 4 : 5", 5.0), ("0 ? 2 : 3 ? 4 : 5", 4.0),
        ("1 || 0 ? 10 : 20", 10.0), ("1 ? null : 2", None),
    ],
)  # fmt: skip
def test_truthiness_and_logic(value: Value, text: str, expected: float | None) -> None:
    assert value(text) == expected


def test_null_propagation_and_missing_variables(values: Values) -> None:
    frame = {"x": [1.0, None], "s": ["a", None]}
    assert values("x + 1", frame) == [2.0, None]
    assert values("-x", frame) == [-1.0, None]
    assert values("x * missing", frame) == [None, None]
    assert values("missing", frame) == [None, None]
    assert values("customer.unknown > 3", frame) == [None, None]
    assert values('s + "!"', frame) == ["a!", None]
    assert values("coalesce(x, 0) + 1", frame) == [2.0, 1.0]
    assert values("coalesce(missing, x, 5)", frame) == [1.0, 5.0]
    assert values('missing ? "yes" : "no"', frame) == ["no", "no"]
    assert values("null + 1", frame) == [None, None]
    assert values('null + "a"', frame) == [None, None]


def test_text_and_numbers(values: Values, value: Value) -> None:
    assert value('"a" + "b"') == "ab"
    assert value('"Save " + 15 + "%"') == "Save 15%"
    assert value('"x" + 0.5') == "x0.5"
    assert value('1 + "x"') == "1x"
    assert value('"n=" + -0') == "n=0"
    assert value('"big " + 1e20') == "big 1e+20"
    assert value('"tiny " + 0.00002') == "tiny 0.00002"
    assert value('"tinier " + 2.5e-7') == "tinier 2.5e-7"
    assert value('"12.5" * 2') == 25.0
    assert value('"abc" * 2') is None
    assert value('"1e3" - 1') == 999.0
    assert value('-"4"') == -4.0
    assert value('+"4.5"') == 4.5
    assert value('" 7" * 1') is None
    frame = {"first": ["Ann"], "amount": [12.0], "count": [3]}
    assert values('first + " owes " + amount + " for " + count', frame) == ["Ann owes 12 for 3"]


def test_unbound_columns_are_read_by_context(values: Values) -> None:
    frame = {"n": [1.5, 0.0, None], "s": ["gold", "", None], "t": ["12", "0", "x"]}
    assert values("n * 2", frame, bound=False) == [3.0, 0.0, None]
    assert values('s == "gold"', frame, bound=False) == [1.0, 0.0, None]
    assert values('"Hi " + s', frame, bound=False) == ["Hi gold", "Hi ", None]
    assert values("t * 2", frame, bound=False) == [24.0, 0.0, None]
    assert values("s ? 1 : 0", frame, bound=False) == [1.0, 0.0, 0.0]
    assert values("n ? 1 : 0", frame, bound=False) == [1.0, 0.0, 0.0]
    assert values("t ? 1 : 0", frame, bound=False) == [1.0, 0.0, 1.0]
    assert values("coalesce(n, 9)", frame, bound=False) == [1.5, 0.0, 9.0]
    assert values("coalesce(s, t)", frame, bound=False) == ["gold", "", "x"]


def test_column_types(values: Values) -> None:
    frame = pl.DataFrame(
        {
            "i": pl.Series([3, None], dtype=pl.Int32),
            "u": pl.Series([2, 5], dtype=pl.UInt8),
            "f": pl.Series([float("nan"), float("inf")], dtype=pl.Float32),
            "b": [True, False],
            "c": pl.Series(["gold", "silver"], dtype=pl.Categorical),
            "e": pl.Series(["x", "y"], dtype=pl.Enum(["x", "y"])),
            "l": [[1], [2]],
            "nul": pl.Series([None, None], dtype=pl.Null),
        }
    )
    assert values("i * u", frame) == [6.0, None]
    assert values("f + 1", frame) == [None, None]  # NaN and inf inputs read as null
    assert values("b + 1", frame) == [2.0, 1.0]
    assert values('c == "gold"', frame) == [1.0, 0.0]
    assert values('e + "!"', frame) == ["x!", "y!"]
    assert values("coalesce(l, 1)", frame) == [1.0, 1.0]
    assert values("coalesce(nul, 2)", frame) == [2.0, 2.0]
    assert frame.select(compile("i").to_expr(frame.schema)).dtypes == [pl.Float64]


def test_dates_and_times(values: Values) -> None:
    frame = {
        "d": [date(2024, 1, 1), date(2024, 6, 1)],
        "t": [datetime(2024, 1, 1, 12), datetime(2024, 5, 1)],
        "z": pl.Series([datetime(2024, 1, 1, 12), None]).dt.replace_time_zone("UTC"),
    }
    assert values("d < t", frame) == [1.0, 0.0]
    assert values("d == z", frame) == [0.0, None]
    assert values("t == z", frame) == [1.0, None]
    assert values('d >= "2024-03-01"', frame) == [0.0, 1.0]
    assert values('"on " + d', frame) == ["on 2024-01-01", "on 2024-06-01"]
    assert values("d + 1", frame) == [None, None]
    assert values("d > 5", frame) == [None, None]
    assert values("d ? 1 : 0", frame) == [1.0, 1.0]
    assert values("coalesce(z, d)", frame) == [datetime(2024, 1, 1, 12), datetime(2024, 6, 1)]
    assert values("if(1, d, z)", frame) == [datetime(2024, 1, 1), datetime(2024, 6, 1)]
    assert values('if(1, d, "x")', frame) == ["2024-01-01", "2024-06-01"]


def test_branches_and_coalesce_unify_to_one_type(value: Value) -> None:
    assert value('1 ? "yes" : 0') == "yes"
    assert value('0 ? "yes" : 0') == "0"
    assert value('if(0, "yes", 2.5)') == "2.5"
    assert value('coalesce(null, 3, "x")') == "3"
    assert value("coalesce(null, null)") is None
    assert value("1 ? null : null") is None
