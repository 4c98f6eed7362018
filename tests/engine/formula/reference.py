"""Reference interpreter for the formula language: plain Python, one row at a time.

It walks the syntax tree (``engine.formula._ast`` nodes) and implements the documented
semantics from scratch: it shares no code with the compiler and knows nothing of Polars
expressions. Differential tests compare the two; the benchmark uses it as the baseline.

Values are ``float | str | date | datetime | None``. Kinds are static, as in the compiler:
``kind_of(node, schema)`` decides, for example, whether ``+`` joins text or adds numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from engine.formula._ast import (
    Binary,
    Boolean,
    Call,
    Conditional,
    Node,
    Null,
    Number,
    Text,
    Unary,
    Variable,
)

NUMBER, TEXT, TIME, NULL = "number", "text", "time", "null"
Row = Mapping[str, Any]
Schema = Mapping[str, pl.DataType]

_NUMERIC_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z| UTC|[+-]\d{2}:\d{2})?)?"
)
_NUMBER_FUNCTIONS = {
    "min", "max", "round", "floor", "ceil", "abs", "sqrt", "pow", "log", "exp", "clamp",
    "len", "contains", "starts_with", "days_since",
}  # fmt: skip


# -- static kinds -------------------------------------------------------------------------


def dtype_kind(dtype: pl.DataType) -> str:
    if dtype in (pl.Float32, pl.Float64, pl.Boolean) or dtype.is_integer():
        return NUMBER
    if dtype in (pl.String, pl.Categorical):
        return TEXT
    if dtype in (pl.Date, pl.Datetime):
        return TIME
    return NULL


def kind_of(node: Node, schema: Schema) -> str:
    if isinstance(node, Number | Boolean):
        return NUMBER
    if isinstance(node, Text):
        return TEXT
    if isinstance(node, Null):
        return NULL
    if isinstance(node, Variable):
        return dtype_kind(schema[node.name]) if node.name in schema else NULL
    if isinstance(node, Unary):
        return NUMBER
    if isinstance(node, Binary):
        sides = {kind_of(node.left, schema), kind_of(node.right, schema)}
        return TEXT if node.op == "+" and TEXT in sides else NUMBER
    if isinstance(node, Conditional):
        return common_kind([kind_of(n, schema) for n in (node.then, node.otherwise)])
    assert isinstance(node, Call)
    if node.name in _NUMBER_FUNCTIONS:
        return NUMBER
    if node.name in ("lower", "upper", "concat"):
        return TEXT
    branches = node.args[1:] if node.name == "if" else node.args
    return common_kind([kind_of(n, schema) for n in branches])


def common_kind(kinds: list[str]) -> str:
    present = set(kinds) - {NULL}
    if TEXT in present:
        return TEXT
    if NUMBER in present:
        return NUMBER
    return TIME if present else NULL


# -- conversions ----------------------------------------------------------------------------


def finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def to_number(value: Any, kind: str) -> float | None:
    if value is None:
        return None
    if kind == NUMBER:
        return finite(float(value))
    if kind == TEXT:
        return finite(float(value)) if _NUMERIC_TEXT.fullmatch(value) else None
    return None


def format_number(x: float) -> str:
    """Shortest round-trip digits; exponent form outside [1e-5, 1e16), as Polars prints."""
    text = repr(x + 0.0)
    if "e" not in text:
        return text.removesuffix(".0")
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if power == -5:
        sign = "-" if mantissa.startswith("-") else ""
        return f"{sign}0.0000{mantissa.lstrip('-').replace('.', '')}"
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def to_text(value: Any, kind: str) -> str | None:
    if value is None:
        return None
    if kind == TEXT:
        return value
    if kind == NUMBER:
        return format_number(float(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return None


def to_time(value: Any, kind: str) -> datetime | None:
    if value is None:
        return None
    if kind == TIME:
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                return value.astimezone(UTC).replace(tzinfo=None)
            return value
        return datetime(value.year, value.month, value.day)
    if kind == TEXT:
        return parse_iso(value)
    return None


def parse_iso(text: str) -> datetime | None:
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
    if fraction:
        moment += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    if offset and offset not in ("Z", " UTC"):
        sign = 1 if offset[0] == "+" else -1
        moment -= sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    return moment


def truthy(value: Any, kind: str) -> bool:
    if value is None:
        return False
    if kind == NUMBER:
        return value != 0
    if kind == TEXT:
        return value != ""
    return kind == TIME


def convert(value: Any, kind: str, target: str) -> Any:
    if target == TEXT:
        return to_text(value, kind)
    if target == NUMBER:
        return to_number(value, kind)
    if target == TIME:
        return to_time(value, kind)
    return None


# -- evaluation -----------------------------------------------------------------------------


class Reference:
    """``Reference(tree, schema, as_of).evaluate(row)`` -> the value of the formula."""

    def __init__(self, tree: Node, schema: Schema, as_of: datetime | None = None) -> None:
        self.tree = tree
        self.schema = schema
        self.as_of = as_of
        self._kinds: dict[int, str] = {}

    def evaluate(self, row: Row) -> Any:
        return self._eval(self.tree, row)

    def _kind(self, node: Node) -> str:
        """Static kinds depend on the schema only: computed once per node."""
        key = id(node)
        if key not in self._kinds:
            self._kinds[key] = kind_of(node, self.schema)
        return self._kinds[key]

    def _typed(self, node: Node, row: Row) -> tuple[Any, str]:
        return self._eval(node, row), self._kind(node)

    def _number(self, node: Node, row: Row) -> float | None:
        return to_number(*self._typed(node, row))

    def _text(self, node: Node, row: Row) -> str | None:
        return to_text(*self._typed(node, row))

    def _truthy(self, node: Node, row: Row) -> bool:
        return truthy(*self._typed(node, row))

    def _eval(self, node: Node, row: Row) -> Any:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Boolean):
            return 1.0 if node.value else 0.0
        if isinstance(node, Text):
            return node.value
        if isinstance(node, Null):
            return None
        if isinstance(node, Variable):
            if self._kind(node) == NULL:
                return None
            value = row[node.name]
            if isinstance(value, bool):
                return float(value)
            if isinstance(value, int | float):
                return to_number(value, NUMBER)
            return value
        if isinstance(node, Unary):
            if node.op == "!":
                return 0.0 if self._truthy(node.operand, row) else 1.0
            x = self._number(node.operand, row)
            return None if x is None else (-x if node.op == "-" else x)
        if isinstance(node, Binary):
            return self._binary(node, row)
        if isinstance(node, Conditional):
            return self._choose(node.condition, node.then, node.otherwise, row)
        assert isinstance(node, Call)
        return self._call(node, row)

    def _choose(self, condition: Node, then: Node, otherwise: Node, row: Row) -> Any:
        target = common_kind([self._kind(then), self._kind(otherwise)])
        branch = then if self._truthy(condition, row) else otherwise
        return convert(*self._typed(branch, row), target)

    def _binary(self, node: Binary, row: Row) -> Any:
        op = node.op
        if op == "&&":
            return float(self._truthy(node.left, row) and self._truthy(node.right, row))
        if op == "||":
            return float(self._truthy(node.left, row) or self._truthy(node.right, row))
        left_kind, right_kind = self._kind(node.left), self._kind(node.right)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return self._compare(node, row, {left_kind, right_kind})
        if op == "+" and TEXT in (left_kind, right_kind):
            a, b = self._text(node.left, row), self._text(node.right, row)
            return None if a is None or b is None else a + b
        a, b = self._number(node.left, row), self._number(node.right, row)
        if a is None or b is None:
            return None
        if op == "+":
            return finite(a + b)
        if op == "-":
            return finite(a - b)
        if op == "*":
            return finite(a * b)
        if b == 0:
            return None
        if op == "/":
            return finite(a / b)
        quotient = a / b  # floored modulo, computed as a - b * floor(a / b)
        if not math.isfinite(quotient):
            return None
        return finite(a - b * float(math.floor(quotient)))

    def _compare(self, node: Binary, row: Row, kinds: set[str]) -> float | None:
        if NULL in kinds or kinds == {TIME, NUMBER}:
            return None
        if kinds == {TIME}:
            a: Any = to_time(*self._typed(node.left, row))
            b: Any = to_time(*self._typed(node.right, row))
        elif NUMBER not in kinds:
            a, b = self._text(node.left, row), self._text(node.right, row)
        else:
            a, b = self._number(node.left, row), self._number(node.right, row)
        if a is None or b is None:
            return None
        result = {
            "==": a == b,
            "!=": a != b,
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
        }[node.op]
        return 1.0 if result else 0.0

    def _call(self, node: Call, row: Row) -> Any:  # noqa: C901 - one branch per function
        name, args = node.name, node.args
        if name == "if":
            return self._choose(args[0], args[1], args[2], row)
        if name == "coalesce":
            target = common_kind([self._kind(a) for a in args])
            for arg in args:
                value = convert(*self._typed(arg, row), target)
                if value is not None:
                    return value
            return None
        if name == "concat":
            return "".join(self._text(a, row) or "" for a in args)
        if name in ("lower", "upper", "len", "contains", "starts_with"):
            texts = [self._text(a, row) for a in args]
            if None in texts:
                return None
            s = texts[0]
            if name == "lower":
                return s.lower()
            if name == "upper":
                return s.upper()
            if name == "len":
                return float(len(s))
            if name == "contains":
                return float(texts[1] in s)
            return float(s.startswith(texts[1]))
        if name == "days_since":
            assert self.as_of is not None
            moment = to_time(*self._typed(args[0], row))
            return None if moment is None else (self.as_of - moment) / timedelta(days=1)
        if name == "round":
            x = self._number(args[0], row)
            decimals = int(args[1].value) if len(args) == 2 else 0  # type: ignore[union-attr]
            return None if x is None else round_half_away(x, decimals)
        xs = [self._number(a, row) for a in args]
        if None in xs:
            return None
        return _math(name, xs)


def _math(name: str, xs: list[Any]) -> float | None:
    x = xs[0]
    if name == "min":
        return min(xs)
    if name == "max":
        return max(xs)
    if name == "clamp":
        return min(max(x, xs[1]), xs[2])
    if name == "floor":
        return float(math.floor(x))
    if name == "ceil":
        return float(math.ceil(x))
    if name == "abs":
        return abs(x)
    if name == "sqrt":
        return math.sqrt(x) if x >= 0 else None
    if name == "log":
        return math.log(x) if x > 0 else None
    try:
        if name == "exp":
            return finite(math.exp(x))
        assert name == "pow"
        return finite(math.pow(x, xs[1]))
    except (OverflowError, ValueError):
        return None


def round_half_away(x: float, decimals: int) -> float | None:
    """Round ``x * 10**decimals`` to an integer, ties away from zero, and scale back."""
    scale = 10.0**decimals
    y = x * scale if decimals else x
    if not math.isfinite(y):
        return x
    whole = math.trunc(y)
    if abs(y - whole) >= 0.5:
        whole += 1 if y > 0 else -1
    rounded = math.copysign(float(whole), y)
    return finite(rounded / scale if decimals else rounded)


__all__ = ["Reference", "format_number", "kind_of", "parse_iso", "round_half_away"]
