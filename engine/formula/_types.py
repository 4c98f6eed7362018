"""Static kinds of compiled values and the conversions between them.

Every compiled sub-expression is a :class:`Typed`: a ``pl.Expr`` plus the kind of value it
holds, known when the expression is built (from literals, functions and the frame schema).
Numbers are always ``Float64`` and always finite: a result that would be infinite or NaN
(overflow, division by zero, sqrt of a negative, ...) is null.

The check costs an operator, so it is deferred: a value is *unchecked* when it may hold
±inf or NaN, and ``as_number`` (what every consumer reads) checks it. Only operations that
map ±inf/NaN to ±inf/NaN, as they map null to null (``+ - *``, negation, ``round``, ``abs``,
``ceil``, ``floor``, a ``?:`` branch), read unchecked values as they are (``raw``), so
``reward * 2 + 1`` is checked once, at the end, with the same result as checking each step.

Compiled expressions grow linearly with the formula: a helper refers to its argument twice
only when the argument is a few nodes (``finite``), so no level doubles the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl

INF = float("inf")
NAN = float("nan")
FALSY_TEXT = ["", "0", "0.0", "-0.0", "false"]  # truthiness of values of unknown type
DAY_US = 86_400_000_000.0
UTC_NAIVE = pl.Datetime("us")


class Kind(StrEnum):
    NUMBER = "number"  # Float64, finite or null
    TEXT = "text"  # String
    TIME = "time"  # a Date or Datetime column (see Typed.dtype)
    ANY = "any"  # a column whose type is unknown (to_expr without a schema)
    NULL = "null"  # statically null: the null literal or a column absent from the frame


@dataclass(frozen=True, slots=True)
class Typed:
    expr: pl.Expr
    kind: Kind
    dtype: pl.DataType | None = None  # the column dtype, for TIME values
    known_null: bool = False  # a null literal: operations on it fold to null literals
    constant: bool = False  # reads no column: a literal, or a constant folded to one
    unchecked: bool = False  # a NUMBER that may hold ±inf or NaN (see the module docstring)
    boolean: pl.Expr | None = None  # the non-null-checked Boolean a 0/1 number was cast from

    @property
    def is_null(self) -> bool:
        """Null whatever the row (folding keeps Polars from simplifying ``x == null``)."""
        return self.known_null or self.kind is Kind.NULL


def null(kind: Kind = Kind.NUMBER) -> Typed:
    """A statically null value; NUMBER and TEXT nulls keep their dtype."""
    if kind is Kind.NUMBER:
        return Typed(pl.lit(None, dtype=pl.Float64), Kind.NUMBER, known_null=True, constant=True)
    if kind is Kind.TEXT:
        return Typed(pl.lit(None, dtype=pl.String), Kind.TEXT, known_null=True, constant=True)
    return Typed(pl.lit(None), Kind.NULL, known_null=True, constant=True)


def constant(expr: pl.Expr, kind: Kind) -> Typed:
    """A plain literal."""
    return Typed(expr, kind, constant=True)


def number(expr: pl.Expr) -> Typed:
    return Typed(expr, Kind.NUMBER)


def unchecked(expr: pl.Expr) -> Typed:
    """A number that may be ±inf or NaN: checked where it is read (``as_number``)."""
    return Typed(expr, Kind.NUMBER, unchecked=True)


def raw(value: Typed) -> pl.Expr:
    """A number as it is, unchecked if it is: for operations that keep ±inf/NaN (see above)."""
    return value.expr if value.kind is Kind.NUMBER and not value.is_null else as_number(value)


def checked(value: Typed) -> Typed:
    return number(finite(value.expr)) if value.unchecked else value


SMALL = 12  # nodes up to which a checked expression is read twice rather than replaced


def _small(expr: pl.Expr) -> bool:
    """At most ``SMALL`` nodes (counting stops there, so this is cheap on any tree)."""
    stack, count = [expr], 0
    while stack:
        count += 1
        if count > SMALL:
            return False
        stack.extend(stack.pop().meta.pop())
    return True


def no_overflow(expr: pl.Expr) -> pl.Expr:
    """±inf -> null. Enough after + - * of finite numbers, which cannot make NaN."""
    if _small(expr):  # a when() reading a few nodes twice costs a fraction of a replace()
        return pl.when(~expr.is_infinite()).then(expr)
    return expr.replace([INF, -INF], None)


def finite(expr: pl.Expr) -> pl.Expr:
    """±inf and NaN -> null."""
    if _small(expr):
        return pl.when(expr.is_finite()).then(expr)
    return expr.replace([INF, -INF, NAN], None)


def kind_of(dtype: pl.DataType) -> Kind:
    if dtype.is_numeric() or dtype == pl.Boolean:
        return Kind.NUMBER
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return Kind.TEXT
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return Kind.TIME
    return Kind.NULL  # lists, structs, binary, durations, ... are not formula values


def column(name: str, dtype: pl.DataType | None) -> Typed:
    """A frame column as a formula value; ``dtype=None`` means the type is unknown."""
    col = pl.col(name)
    if dtype is None:
        return Typed(col, Kind.ANY)
    kind = kind_of(dtype)
    if kind is Kind.NUMBER:
        if dtype.is_float():
            return unchecked(col if dtype == pl.Float64 else col.cast(pl.Float64))
        return number(col.cast(pl.Float64))
    if kind is Kind.TEXT:
        return Typed(col if dtype == pl.String else col.cast(pl.String), Kind.TEXT)
    if kind is Kind.TIME:
        return Typed(col, Kind.TIME, dtype)
    return null(Kind.NULL)


def as_number(value: Typed) -> pl.Expr:
    """Where a number is expected, text is read as a number (null when it is not one)."""
    if value.is_null:
        return pl.lit(None, dtype=pl.Float64)
    if value.kind is Kind.NUMBER:
        return finite(value.expr) if value.unchecked else value.expr
    if value.kind in (Kind.TEXT, Kind.ANY):
        return finite(value.expr.cast(pl.Float64, strict=False))
    return pl.lit(None, dtype=pl.Float64)


def as_text(value: Typed) -> pl.Expr:
    """Where text is expected, a number is written in its shortest form (18 -> "18")."""
    if value.is_null:
        return pl.lit(None, dtype=pl.String)
    if value.kind is Kind.TEXT:
        return value.expr
    if value.kind is Kind.NUMBER:
        # Polars prints floats as 18.0, 0.1, 1e+20, 2.5e-7, -0.0
        return as_number(value).cast(pl.String).str.strip_suffix(".0").replace("-0", "0")
    if value.kind in (Kind.ANY, Kind.TIME):
        return value.expr.cast(pl.String)
    return pl.lit(None, dtype=pl.String)


def as_bool(value: Typed) -> pl.Expr:
    """Truthiness as a non-null Boolean: 0, null and "" are false."""
    expr, kind = value.expr, value.kind
    if value.is_null:
        return pl.lit(False)
    if kind is Kind.NUMBER:
        if value.boolean is not None:
            return value.boolean.fill_null(False)
        return (as_number(value) != 0.0).fill_null(False)
    if kind is Kind.TEXT:
        return (expr != "").fill_null(False)
    if kind is Kind.ANY:
        return expr.cast(pl.String).fill_null("").is_in(FALSY_TEXT).not_()
    if kind is Kind.TIME:
        return expr.is_not_null()
    return pl.lit(False)


def from_bool(expr: pl.Expr) -> Typed:
    """Booleans leave formulas as the numbers 1 and 0 (``as_bool`` reads the Boolean)."""
    return Typed(expr.cast(pl.Float64), Kind.NUMBER, boolean=expr)


def as_datetime(value: Typed) -> pl.Expr:
    """A naive UTC ``Datetime("us")``: Date/Datetime columns, or ISO-8601 text."""
    if value.is_null:
        return pl.lit(None, dtype=UTC_NAIVE)
    if value.kind is Kind.TIME:
        dtype = value.dtype
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            utc = value.expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            return utc.cast(UTC_NAIVE)
        return value.expr.cast(UTC_NAIVE)
    if value.kind in (Kind.TEXT, Kind.ANY):
        return _parse_iso(as_text(value))
    return pl.lit(None, dtype=UTC_NAIVE)


def _parse_iso(text: pl.Expr) -> pl.Expr:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD[T ]HH:MM:SS[.f][Z| UTC|±HH:MM]`` (no offset = UTC)."""
    canonical = (
        text.str.replace(r"^(\d{4}-\d{2}-\d{2})$", "${1}T00:00:00")
        .str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
        .str.replace(r"(?:Z| UTC)$", "+00:00")
        .str.replace(r"(T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)$", "${1}+00:00")
    )
    parsed = canonical.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us")
    return parsed.dt.replace_time_zone(None)


def unify(values: list[Typed], *, keep_unchecked: bool = False) -> tuple[list[pl.Expr], Kind]:
    """Bring the branches of ``?:``/``if`` or the arguments of ``coalesce`` to one kind.

    Text wins over numbers (numbers are written as text), numbers over unknown columns; Date
    and Datetime values stay times; columns of unknown type alone are left to Polars. With
    ``keep_unchecked`` numbers are left unchecked (``raw``; the caller checks the result).
    """
    kinds = {v.kind for v in values} - {Kind.NULL}
    if not kinds:
        return [pl.lit(None) for _ in values], Kind.NULL
    if Kind.TEXT in kinds or kinds == {Kind.TIME, Kind.ANY}:
        return [as_text(v) for v in values], Kind.TEXT
    if Kind.NUMBER in kinds:
        read = raw if keep_unchecked else as_number
        return [read(v) for v in values], Kind.NUMBER
    if kinds == {Kind.TIME}:
        return [as_datetime(v) for v in values], Kind.TIME
    return [v.expr if v.kind is Kind.ANY else pl.lit(None) for v in values], Kind.ANY


__all__ = [
    "Kind",
    "Typed",
    "as_bool",
    "as_datetime",
    "as_number",
    "as_text",
    "checked",
    "column",
    "constant",
    "finite",
    "from_bool",
    "kind_of",
    "no_overflow",
    "null",
    "number",
    "raw",
    "unchecked",
    "unify",
]
