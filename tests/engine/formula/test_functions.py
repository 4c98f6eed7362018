"""Golden values for every function, including its null and domain rules."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest

from engine.formula import FormulaError, compile
from tests.engine.formula.conftest import AS_OF, Value, Values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("min(3)", 3.0), ("min(3, 1, 2)", 1.0), ("max(3, 1, 2)", 3.0), ("min(-1, -5)", -5.0),
        ("min(1, null)", None), ("max(null, 2, 3)", None), ('min("4", 5)', 4.0),
        ("round(2.5)", 3.0), ("round(-2.5)", -3.0), ("round(2.4)", 2.0), ("round(0.5)", 1.0),
        ("round(1.25, 1)", 1.3), ("round(-1.25, 1)", -1.3), ("round(2.675, 2)", 2.68),
        ("round(1.005, 2)", 1.0), ("round(1234.5678, 2)", 1234.57), ("round(7, 0)", 7.0),
        ("round(0.1 + 0.2, 15)", 0.3), ("round(1e300, 15)", 1e300), ("round(null, 2)", None),
        ("floor(2.7)", 2.0), ("floor(-2.1)", -3.0), ("ceil(2.1)", 3.0), ("ceil(-2.7)", -2.0),
        ("abs(-3)", 3.0), ("abs(4)", 4.0), ("sqrt(16)", 4.0), ("sqrt(-1)", None),
        ("sqrt(0)", 0.0), ("pow(2, 10)", 1024.0), ("pow(4, 0.5)", 2.0), ("pow(0, 0)", 1.0),
        ("pow(-8, 1 / 3)", None), ("pow(0, -1)", None), ("pow(10, 400)", None),
        ("pow(-2, 3)", -8.0), ("log(1)", 0.0), ("log(0)", None), ("log(-1)", None),
        ("exp(0)", 1.0), ("exp(1000)", None), ("exp(-1000)", 0.0),
        ("clamp(5, 0, 10)", 5.0), ("clamp(-5, 0, 10)", 0.0), ("clamp(50, 0, 10)", 10.0),
        ("clamp(5, 8, 2)", 2.0), ("clamp(null, 0, 1)", None), ("clamp(5, null, 10)", None),
        ("clamp(5, 0, null)", None),
    ],
)  # fmt: skip
def test_math(value: Value, text: str, expected: float | None) -> None:
    assert value(text) == expected


def test_log_and_exp_are_natural(value: Value) -> None:
    assert value("log(exp(2))") == pytest.approx(2.0)
    assert value("exp(1)") == math.e


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("coalesce(null, 2)", 2.0), ("coalesce(1, 2)", 1.0), ("coalesce(null)", None),
        ('concat("a", "b", "c")', "abc"), ('concat("n=", 2)', "n=2"),
        ('concat("a", null, "b")', "ab"), ("concat(null)", ""), ('concat("x")', "x"),
        ('lower("GoLD")', "gold"), ('upper("gold")', "GOLD"), ('upper("straße")', "STRASSE"),
        ("lower(null)", None), ('len("")', 0.0), ('len("héllo")', 5.0), ("len(12.5)", 4.0),
        ("len(null)", None), ('contains("gold card", "card")', 1.0),
        ('contains("gold", "Gold")', 0.0), ('contains("gold", "")', 1.0),
        ('contains("a.b", ".")', 1.0), ('contains("abc", "[a-z]")', 0.0),
        ('contains(null, "x")', None), ('contains("x", null)', None),
        ('starts_with("gold card", "gold")', 1.0), ('starts_with("gold", "old")', 0.0),
        ('starts_with(null, "a")', None), ('if(1, "a", "b")', "a"), ('if(0, "a", "b")', "b"),
        ('if("", 1, 2)', 2.0),
    ],
)  # fmt: skip
def test_text_and_choice(value: Value, text: str, expected: object) -> None:
    assert value(text) == expected


def test_spec_function_examples(values: Values) -> None:
    frame = {
        "rate": [0.1, 0.4, None],
        "price": [2.675, 10.0, 1.234],
        "custom_rate": [None, 0.2, None],
        "default_rate": [0.05, 0.05, None],
        "first_name": ["Ann", "Bo", None],
        "last_name": ["Lee", None, "Kim"],
    }
    assert values("min(rate, 0.25)", frame) == [0.1, 0.25, None]
    assert values("round(price, 2)", frame) == [2.68, 10.0, 1.23]
    assert values("coalesce(custom_rate, default_rate)", frame) == [0.05, 0.2, None]
    assert values('concat(first_name, " ", last_name)', frame) == ["Ann Lee", "Bo ", " Kim"]


def test_days_since(values: Values) -> None:
    frame = pl.DataFrame(
        {
            "d": [date(2024, 5, 31), None],
            "t": [datetime(2024, 6, 1, 6), datetime(2024, 6, 2, 12)],
            "ms": pl.Series([datetime(2024, 5, 1, 12)] * 2, dtype=pl.Datetime("ms")),
            "z": pl.Series([datetime(2024, 6, 1, 12), None]).dt.replace_time_zone("Europe/Paris"),
            "s": ["2024-05-22", "2024-05-31T12:00:00Z"],
            "s2": ["2024-06-01 10:00:00.5+02:00", "2024-06-01T00:00:00-06:00"],
            "bad": ["yesterday", "2024-02-30"],
            "n": [1.0, 2.0],
        }
    )
    assert values("days_since(d)", frame) == [1.5, None]
    assert values("days_since(t)", frame) == [0.25, -1.0]
    assert values("days_since(ms)", frame) == [31.0, 31.0]
    assert values("days_since(z)", frame) == [pytest.approx(2 / 24), None]  # 12:00 CEST
    assert values("days_since(s)", frame) == [10.5, 1.0]
    assert values("days_since(s2)", frame) == [
        pytest.approx((4 * 3600 - 0.5) / 86400),
        pytest.approx(0.25),
    ]
    assert values("days_since(bad)", frame) == [None, None]
    assert values("days_since(n)", frame) == [None, None]
    assert values("days_since(missing)", frame) == [None, None]
    assert values('days_since("2024-05-01") > 30', frame) == [1.0, 1.0]
    assert values("days_since(s)", frame, bound=False) == [10.5, 1.0]
    assert values("days_since(d)", frame, bound=False) == [1.5, None]


def test_days_since_uses_the_as_of_passed_in(values: Values) -> None:
    frame = {"d": [date(2024, 1, 1)]}
    assert values("days_since(d)", frame, as_of=datetime(2024, 1, 11)) == [10.0]
    paris = timezone(timedelta(hours=2))
    assert values("days_since(d)", frame, as_of=datetime(2024, 1, 11, 2, tzinfo=paris)) == [10.0]
    assert values("days_since(d)", frame, as_of=datetime(2024, 1, 2, tzinfo=UTC)) == [1.0]
    formula = compile("days_since(d)")
    assert pl.DataFrame(frame).select(formula.to_expr(as_of=date(2024, 1, 3))).item() == 2.0
    assert AS_OF.tzinfo is None


def test_days_since_without_as_of_is_a_formula_error() -> None:
    formula = compile("1 + days_since(signup_date)")
    assert formula.needs_as_of
    with pytest.raises(FormulaError, match="days_since\\(\\) at column 5 needs the decision time"):
        formula.to_expr({"signup_date": pl.Date})
    with pytest.raises(FormulaError) as caught:
        _ = formula.expr
    assert caught.value.column == 5
    with pytest.raises(FormulaError, match="as_of must be a datetime"):
        formula.to_expr(as_of="2024-01-01")  # type: ignore[arg-type]
