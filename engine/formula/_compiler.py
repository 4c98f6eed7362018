"""Compiler: syntax tree -> one ``pl.Expr``, given the frame's columns and the decision time.

The rules for kinds, truthiness and nulls live in :mod:`engine.formula._types`; here each
node picks the rule. Nothing runs per row in Python: the result is a plain Polars expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from engine.formula._ast import (
    COMPARISONS,
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
    children,
    walk,
)
from engine.formula._errors import FormulaError
from engine.formula._functions import FUNCTIONS, choose
from engine.formula._types import (
    Kind,
    Typed,
    as_bool,
    as_datetime,
    as_number,
    as_text,
    checked,
    column,
    constant,
    from_bool,
    null,
    raw,
    unchecked,
)

Columns = Mapping[str, pl.DataType] | frozenset[str] | None
MIRRORED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True, slots=True)
class Scope:
    """What the frame offers: column dtypes (a mapping), names only (a set), or everything
    with unknown types (``None``); and the decision time as a naive UTC datetime."""

    columns: Columns
    as_of: datetime | None

    def has(self, name: str) -> bool:
        return self.columns is None or name in self.columns


def compile_tree(tree: Node, scope: Scope) -> pl.Expr:
    return checked(compile_typed(tree, scope)).expr


def compile_typed(tree: Node, scope: Scope) -> Typed:
    """The compiled tree before its final finiteness check (see ``Typed.unchecked``)."""
    return _Compiler(scope, _constant_nodes(tree, scope)).compile(tree, fold=True)


def _constant_nodes(tree: Node, scope: Scope) -> frozenset[int]:
    """``id`` of every operator or call node whose value reads no column."""
    reads_column: dict[int, bool] = {}
    for node in reversed(list(walk(tree))):  # children before parents
        if isinstance(node, Variable):
            reads_column[id(node)] = scope.has(node.name)
        else:
            reads_column[id(node)] = any(reads_column[id(c)] for c in children(node))
    return frozenset(
        key for node in walk(tree) if children(node) and not reads_column[key := id(node)]
    )


class _Compiler:
    def __init__(self, scope: Scope, constants: frozenset[int]) -> None:
        self.scope = scope
        self.constants = constants

    def compile(self, node: Node, *, fold: bool) -> Typed:
        """Compile ``node``; with ``fold``, a constant sub-formula becomes one literal.

        Folding evaluates the constant part once, with Polars, when the expression is built.
        Besides saving work per row it keeps Polars from mis-broadcasting expressions that
        mix columns with derived literals (seen in Polars 2.1 with ``when(<constant>)``).
        """
        constant = id(node) in self.constants
        typed = self._build(node, fold=fold and not constant)
        return _fold(typed) if fold and constant else typed

    def _build(self, node: Node, *, fold: bool) -> Typed:
        match node:
            case Number(value=value):
                return constant(pl.lit(value, dtype=pl.Float64), Kind.NUMBER)
            case Text(value=value):
                return constant(pl.lit(value, dtype=pl.String), Kind.TEXT)
            case Boolean(value=value):
                return constant(pl.lit(1.0 if value else 0.0, dtype=pl.Float64), Kind.NUMBER)
            case Null():
                return null(Kind.NULL)
            case Variable(name=name):
                return _variable(name, self.scope.columns)
            case Unary(op=op, operand=operand):
                return _unary(op, self.compile(operand, fold=fold))
            case Binary(op=op, left=left, right=right):
                return _binary(op, self.compile(left, fold=fold), self.compile(right, fold=fold))
            case Conditional(condition=condition, then=then, otherwise=otherwise):
                parts = (self.compile(n, fold=fold) for n in (condition, then, otherwise))
                return choose(*parts)
            case Call(name=name, args=args):
                function = FUNCTIONS[name]
                values = [self.compile(a, fold=fold) for a in args]
                if function.strict and any(v.is_null for v in values):
                    return null(function.result)
                return function.build(values, node, self.scope.as_of)
        raise AssertionError(f"unknown node {node!r}")  # pragma: no cover


def _fold(value: Typed) -> Typed:
    value = checked(value)
    if value.is_null or value.kind not in (Kind.NUMBER, Kind.TEXT):
        return value
    dtype = pl.Float64 if value.kind is Kind.NUMBER else pl.String
    try:
        result = pl.select(value.expr.first().alias("value")).item()
    except pl.exceptions.PolarsError:  # pragma: no cover - evaluated per row as before
        return value
    if result is None:
        return null(value.kind)
    return constant(pl.lit(result, dtype=dtype), value.kind)


def _variable(name: str, columns: Columns) -> Typed:
    if columns is None:
        return column(name, None)
    if isinstance(columns, Mapping):
        if name not in columns:
            return null(Kind.NULL)
        dtype = _dtype(name, columns[name])
        return null(Kind.NULL) if dtype is None else column(name, dtype)
    return column(name, None) if name in columns else null(Kind.NULL)


def _dtype(name: str, dtype: object) -> pl.DataType | None:
    """A dtype instance from a schema value (``pl.Int64`` works as well as ``pl.Int64()``)."""
    if isinstance(dtype, pl.DataType):
        return dtype
    if isinstance(dtype, type) and issubclass(dtype, pl.DataType):
        try:
            return dtype()
        except TypeError:  # e.g. pl.List without its inner type: not a formula value anyway
            return None
    raise FormulaError(f"the type of column '{name}' must be a Polars data type, got {dtype!r}")


def _unary(op: str, operand: Typed) -> Typed:
    if op == "!":
        return from_bool(as_bool(operand).not_())
    if operand.is_null:
        return null()
    value = raw(operand)  # negation keeps ±inf/NaN: the check can wait
    return Typed(-value if op == "-" else value, Kind.NUMBER, unchecked=operand.unchecked)


def _binary(op: str, left: Typed, right: Typed) -> Typed:
    if op == "&&":
        return from_bool(as_bool(left) & as_bool(right))
    if op == "||":
        return from_bool(as_bool(left) | as_bool(right))
    if op in COMPARISONS:
        return _compare(op, left, right)
    known_null = left.is_null or right.is_null
    if op == "+" and Kind.TEXT in (left.kind, right.kind):
        if known_null:
            return null(Kind.TEXT)
        return Typed(pl.concat_str([as_text(left), as_text(right)]), Kind.TEXT)
    if known_null:
        return null()
    if op in ("+", "-", "*"):  # keep ±inf/NaN, may overflow: checked where read
        a, b = raw(left), raw(right)
        return unchecked(a + b if op == "+" else a - b if op == "-" else a * b)
    a, b = as_number(left), as_number(right)
    if op == "/":
        return unchecked(a / b)  # x / 0 is ±inf or NaN: null once checked
    return unchecked(a % b)  # floored modulo, like Python; x % 0 is NaN: null once checked


def _compare(op: str, left: Typed, right: Typed) -> Typed:
    """Text with text (or with a column of unknown type) compares as text; Date/Datetime with
    Date/Datetime as times, with text as ISO text; everything else compares as numbers."""
    kinds = {left.kind, right.kind}
    if left.is_null or right.is_null or kinds == {Kind.TIME, Kind.NUMBER}:
        return null()
    if kinds == {Kind.TIME}:
        a, b = as_datetime(left), as_datetime(right)
    elif Kind.NUMBER not in kinds and kinds & {Kind.TEXT, Kind.TIME}:
        a, b = as_text(left), as_text(right)
    else:
        a, b = as_number(left), as_number(right)
    if left.constant and not right.constant:
        # Polars 2.1 loses the frame length in `literal < when(...)` when the when() picks
        # one literal branch for every row; `when(...) > literal` is fine, so mirror it
        a, b, op = b, a, MIRRORED[op]
    match op:
        case "==":
            result = a == b
        case "!=":
            result = a != b
        case "<":
            result = a < b
        case "<=":
            result = a <= b
        case ">":
            result = a > b
        case _:
            result = a >= b
    return from_bool(result)


__all__ = ["Columns", "Scope", "compile_tree", "compile_typed"]
