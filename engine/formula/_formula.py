"""``compile(text) -> Formula`` (cached) and ``Formula.to_expr(columns, as_of=...)``."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

import polars as pl

from engine.formula._ast import Call, Node, variables, walk
from engine.formula._compiler import Scope, compile_typed
from engine.formula._errors import FormulaError
from engine.formula._functions import needs_as_of_message
from engine.formula._parser import parse
from engine.formula._types import checked, finite

CACHE_SIZE = 1024


@dataclass(frozen=True)
class Formula:
    """A validated formula. Build expressions with :meth:`to_expr`; it never fails per row."""

    text: str
    ast: Node = field(repr=False)
    variables: frozenset[str] = field(repr=False)
    time_call: Call | None = field(default=None, repr=False, compare=False)

    @property
    def needs_as_of(self) -> bool:
        """True when the formula calls ``days_since`` and so needs ``as_of``."""
        return self.time_call is not None

    def to_expr(
        self,
        columns: Mapping[str, pl.DataType] | Collection[str] | None = None,
        *,
        as_of: datetime | date | None = None,
    ) -> pl.Expr:
        """One Polars expression computing the formula for every row of a frame.

        ``columns``: the frame schema (``frame.collect_schema()``), which gives each variable
        its type - best; or just the column names; or ``None`` to assume every variable is a
        column of unknown type. Variables that are not among ``columns`` are null.
        ``as_of``: the decision time used by ``days_since`` (naive = UTC); never the clock.
        """
        expr, unchecked = self.to_unchecked_expr(columns, as_of=as_of)
        return finite(expr) if unchecked else expr

    def to_unchecked_expr(
        self,
        columns: Mapping[str, pl.DataType] | Collection[str] | None = None,
        *,
        as_of: datetime | date | None = None,
    ) -> tuple[pl.Expr, bool]:
        """``to_expr`` without the final check that turns ±inf and NaN into null: returns
        the expression and whether that check is still due. A caller that stores the value
        in a column checks it there with ``finite(pl.col(name))``, which costs less than the
        check inside a large expression."""
        if self.time_call is not None and as_of is None:
            raise FormulaError(needs_as_of_message(self.time_call), column=self.time_call.column)
        bound = _columns(columns)
        typed = compile_typed(self.ast, Scope(bound, _utc(as_of)))
        expr = typed.expr
        if not any(bound is None or name in bound for name in self.variables):
            # reads no column: make sure it is a scalar that broadcasts to any frame height
            return checked(typed).expr.first(), False
        return expr, typed.unchecked

    @functools.cached_property
    def expr(self) -> pl.Expr:
        """``to_expr()``: every variable assumed present, types unknown."""
        return self.to_expr()


def compile(text: str) -> Formula:  # noqa: A001 - the package's public name
    """Parse and validate ``text``; raises :class:`FormulaError`. Cached by text."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be text, got {type(text).__name__}")
    return _compile_cached(text)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile_cached(text: str) -> Formula:
    tree = parse(text)
    time_call = next(
        (n for n in walk(tree) if isinstance(n, Call) and n.name == "days_since"), None
    )
    return Formula(text, tree, variables(tree), time_call)


compile.cache_clear = _compile_cached.cache_clear  # type: ignore[attr-defined]
compile.cache_info = _compile_cached.cache_info  # type: ignore[attr-defined]
compile_formula = compile


def _columns(
    columns: Mapping[str, pl.DataType] | Collection[str] | None,
) -> Mapping[str, pl.DataType] | frozenset[str] | None:
    if columns is None or isinstance(columns, Mapping):
        return columns
    if isinstance(columns, str | bytes) or not isinstance(columns, Collection):
        raise FormulaError(
            "columns must be a schema mapping (name -> dtype) or a collection of column names"
        )
    return frozenset(columns)


def _utc(as_of: datetime | date | None) -> datetime | None:
    if as_of is None:
        return None
    if isinstance(as_of, datetime):
        if as_of.tzinfo is not None:
            return as_of.astimezone(UTC).replace(tzinfo=None)
        return as_of
    if isinstance(as_of, date):
        return datetime.combine(as_of, time())
    raise FormulaError(f"as_of must be a datetime, got {type(as_of).__name__}")


__all__ = ["Formula", "compile", "compile_formula"]
