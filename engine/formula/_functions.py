"""The function library: arity checks at parse time, Polars builders at ``to_expr`` time."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from engine.formula._ast import Call, Node, Number
from engine.formula._errors import FormulaError
from engine.formula._tokens import shorten
from engine.formula._types import (
    DAY_US,
    INF,
    UTC_NAIVE,
    Kind,
    Typed,
    as_bool,
    as_datetime,
    as_number,
    as_text,
    no_overflow,
    null,
    number,
    raw,
    unchecked,
    unify,
)

MAX_DECIMALS = 15
Builder = Callable[[list[Typed], Call, datetime | None], Typed]


@dataclass(frozen=True, slots=True)
class Function:
    min_args: int
    max_args: int | None  # None: any number
    build: Builder
    cost: int  # see engine.formula._parser.cost
    result: Kind = Kind.NUMBER
    strict: bool = True  # a statically null argument makes the result null


def choose(condition: Typed, then: Typed, otherwise: Typed) -> Typed:
    """``condition ? then : otherwise`` (and ``if``): branches unified to one kind."""
    (then_expr, otherwise_expr), kind = unify([then, otherwise], keep_unchecked=True)
    if kind is Kind.NULL:
        return null(Kind.NULL)
    dtype = UTC_NAIVE if kind is Kind.TIME else None
    loose = kind is Kind.NUMBER  # a branch keeps ±inf/NaN: checked where the result is read
    if condition.constant:  # decided now: Polars 2.1 mis-sizes when(<literal>) results
        if pl.select(as_bool(condition)).item():
            return Typed(
                then_expr, kind, dtype, then.is_null, then.constant, loose and then.unchecked
            )
        return Typed(
            otherwise_expr,
            kind,
            dtype,
            otherwise.is_null,
            otherwise.constant,
            loose and otherwise.unchecked,
        )
    expr = pl.when(as_bool(condition)).then(then_expr).otherwise(otherwise_expr)
    return Typed(expr, kind, dtype, unchecked=loose and (then.unchecked or otherwise.unchecked))


def _math(method: str, *, keeps: bool) -> Builder:
    """``keeps``: the function maps ±inf/NaN to ±inf/NaN (abs, ceil, floor), so it reads
    its argument unchecked; the others (exp, log, sqrt) read it checked. Either way the
    result may be ±inf/NaN and is checked where it is read."""

    def build(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
        value = args[0]
        if keeps:
            expr = getattr(raw(value), method)()
            return Typed(expr, Kind.NUMBER, unchecked=value.unchecked)
        return unchecked(getattr(as_number(value), method)())

    return build


def _extreme(pick: Callable[[list[pl.Expr]], pl.Expr], sentinel: float) -> Builder:
    # null -> a sentinel that always wins the pick, then ±inf -> null: null if any argument is
    def build(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
        return unchecked(pick([as_number(a).fill_null(sentinel) for a in args]))

    return build


def _min(exprs: list[pl.Expr]) -> pl.Expr:
    return pl.min_horizontal(exprs)


def _max(exprs: list[pl.Expr]) -> pl.Expr:
    return pl.max_horizontal(exprs)


def _clamp(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    value, low, high = (as_number(a) for a in args)
    floored = no_overflow(pl.max_horizontal(value.fill_null(INF), low.fill_null(INF)))
    return unchecked(pl.min_horizontal(floored.fill_null(-INF), high.fill_null(-INF)))


def _round(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    decimals = int(call.args[1].value) if len(call.args) == 2 else 0  # type: ignore[union-attr]
    # Polars rounds x * 10**decimals half away from zero and divides back (x itself if the
    # product overflows): ties are decided on the binary value, so round(1.005, 2) == 1.0
    value = args[0]  # rounding keeps ±inf/NaN: the check can wait
    rounded = raw(value).round(decimals, mode="half_away_from_zero")
    return Typed(rounded, Kind.NUMBER, unchecked=value.unchecked)


def _pow(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    return unchecked(as_number(args[0]).pow(as_number(args[1])))


def _coalesce(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    exprs, kind = unify(args)
    if kind is Kind.NULL:
        return null(Kind.NULL)
    return Typed(pl.coalesce(exprs), kind, UTC_NAIVE if kind is Kind.TIME else None)


def _concat(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    return Typed(pl.concat_str([as_text(a) for a in args], ignore_nulls=True), Kind.TEXT)


def _text_method(method: str) -> Builder:
    def build(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
        return Typed(getattr(as_text(args[0]).str, method)(), Kind.TEXT)

    return build


def _len(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    return number(as_text(args[0]).str.len_chars().cast(pl.Float64))


def _contains(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    found = as_text(args[0]).str.contains(as_text(args[1]), literal=True)
    return number(found.cast(pl.Float64))


def _starts_with(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    return number(as_text(args[0]).str.starts_with(as_text(args[1])).cast(pl.Float64))


def _if(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    return choose(*args)


def _days_since(args: list[Typed], call: Call, as_of: datetime | None) -> Typed:
    if as_of is None:
        raise FormulaError(needs_as_of_message(call), column=call.column)
    elapsed = pl.lit(as_of, dtype=UTC_NAIVE) - as_datetime(args[0])
    return number(elapsed.dt.total_microseconds() / DAY_US)


def needs_as_of_message(call: Call) -> str:
    return (
        f"days_since() at column {call.column} needs the decision time: "
        "pass as_of= to Formula.to_expr"
    )


FUNCTIONS: dict[str, Function] = {
    "abs": Function(1, 1, _math("abs", keeps=True), 2),
    "ceil": Function(1, 1, _math("ceil", keeps=True), 2),
    "clamp": Function(3, 3, _clamp, 7),
    "coalesce": Function(1, None, _coalesce, 3, Kind.ANY, strict=False),
    "concat": Function(1, None, _concat, 3, Kind.TEXT, strict=False),
    "contains": Function(2, 2, _contains, 3),
    "days_since": Function(1, 1, _days_since, 12),
    "exp": Function(1, 1, _math("exp", keeps=False), 3),
    "floor": Function(1, 1, _math("floor", keeps=True), 2),
    "if": Function(3, 3, _if, 3, Kind.ANY, strict=False),
    "len": Function(1, 1, _len, 3),
    "log": Function(1, 1, _math("log", keeps=False), 3),
    "lower": Function(1, 1, _text_method("to_lowercase"), 3, Kind.TEXT),
    "max": Function(1, None, _extreme(_max, INF), 4),
    "min": Function(1, None, _extreme(_min, -INF), 4),
    "pow": Function(2, 2, _pow, 3),
    "round": Function(1, 2, _round, 3),
    "sqrt": Function(1, 1, _math("sqrt", keeps=False), 3),
    "starts_with": Function(2, 2, _starts_with, 3),
    "upper": Function(1, 1, _text_method("to_uppercase"), 3, Kind.TEXT),
}


def check_call(name: str, args: Sequence[Node], column: int) -> None:
    """Reject unknown functions, wrong argument counts and a non-literal round() precision."""
    function = FUNCTIONS.get(name)
    if function is None:
        close = difflib.get_close_matches(name.lower(), FUNCTIONS, n=1)
        hint = f"did you mean {close[0]}()?" if close else "functions: " + ", ".join(FUNCTIONS)
        raise FormulaError(
            f"unknown function '{shorten(name)}' at column {column}; {hint}", column=column
        )
    count, low, high = len(args), function.min_args, function.max_args
    if count < low or (high is not None and count > high):
        if high is None:
            expected = f"at least {low} argument{'s' if low > 1 else ''}"
        elif low == high:
            expected = f"{low} argument{'s' if low > 1 else ''}"
        else:
            expected = f"{low} to {high} arguments"
        raise FormulaError(
            f"{name}() at column {column} takes {expected}, got {count}", column=column
        )
    if name == "round" and count == 2:
        decimals = args[1]
        if not (
            isinstance(decimals, Number)
            and decimals.value.is_integer()
            and 0 <= decimals.value <= MAX_DECIMALS
        ):
            raise FormulaError(
                f"round() at column {column}: the number of decimals must be a whole number "
                f"from 0 to {MAX_DECIMALS} written directly, e.g. round(price, 2)",
                column=decimals.column or column,
            )


__all__ = ["FUNCTIONS", "Function", "check_call", "choose", "needs_as_of_message"]
