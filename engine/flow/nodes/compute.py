"""``compute``: category computed fields -> ``personalization`` (spec §11.2).

Each offer's category carries computed fields (``formula`` in the formula language of
``engine.formula``). Formulas are compiled once per compiled flow; a formula that does not
compile is null for every row, a runtime failure is null for that row. Values land in
``personalization.<name>`` columns (read by ``response`` templates) and, per candidate, in a
JSON object of its category's fields. Runs in phase 3, i.e. on the final <= 50 rows per
request only; fields whose formulas read offer fields only are computed once per compiled
flow into the static candidate table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from engine.flow import columns as c
from engine.flow.configs import ComputeConfig
from engine.flow.nodes.base import Call, CompileContext, Node
from engine.flow.nodes.json_text import JsonLayout
from engine.formula import finite

PERSONALIZATION = "_personalization"
PREFIX = "personalization."
PER_CALL = ("customer.", "attributes.", "metrics.", "request.", "personalization.")


def _offer_only(formula: Any) -> bool:
    """True when a formula reads only the offer's fields (same value for every customer)."""
    return not formula.needs_as_of and not any(v.startswith(PER_CALL) for v in formula.variables)


class ComputeNode(Node):
    config: ComputeConfig

    def prepare(self, ctx: CompileContext) -> None:
        from engine.formula import FormulaError
        from engine.formula import compile as compile_formula

        wanted = set(self.config.fields) if self.config.fields is not None else None
        self.by_category: dict[str, list[tuple[str, Any]]] = {}
        for cat_id, fields in ctx.catalog.computed_fields.items():
            compiled = []
            for f in fields:
                if wanted is not None and f.name not in wanted:
                    continue
                try:
                    compiled.append((f.name, compile_formula(f.formula)))
                except FormulaError:
                    compiled.append((f.name, None))
            if compiled:
                self.by_category[cat_id] = compiled
        self.fields = sorted({name for fs in self.by_category.values() for name, _ in fs})
        # fields whose every formula reads offer fields only: computed once per flow
        self.static = {
            name
            for name in self.fields
            if all(
                f is None or _offer_only(f)
                for fs in self.by_category.values()
                for n, f in fs
                if n == name
            )
        }

        fields = {cat: [name for name, _ in fs] for cat, fs in self.by_category.items()}
        self.layout = JsonLayout(fields, self.static, PREFIX)
        self.segmented = False  # the static table holds the JSON segments (``precompute``)

    def precompute(self, table: pl.DataFrame) -> pl.DataFrame:
        """Add the offer-only fields (``personalization.*``) and the JSON segments of the
        personalization object to the static candidate table."""
        if self.static:
            for step in self._chains(table.schema, None, self.static):
                table = table.with_columns(step)
        segments = self.layout.segments(table.schema) if self.by_category else None
        if segments is not None:
            table = table.with_columns(segments)
            self.segmented = True
        return table

    @staticmethod
    def _expr(formula: Any, schema: Mapping[str, pl.DataType], as_of: Any) -> tuple[pl.Expr, bool]:
        """The formula's expression and whether its finiteness check is still due."""
        if formula is None:
            return pl.lit(None), False
        try:
            expr, unchecked = formula.to_unchecked_expr(schema, as_of=as_of)
            return expr, unchecked
        except Exception:  # a formula that cannot be built is null, never an error
            return pl.lit(None), False

    def _exprs(self, call: Call) -> list[list[pl.Expr]]:
        dynamic = set(self.fields) - self.static
        return self._chains(call.schema, call.as_of, dynamic)

    def _chains(
        self, schema: Mapping[str, pl.DataType], as_of: Any, names: set[str]
    ) -> list[list[pl.Expr]]:
        """Two steps: each field's values by category, then the finiteness check of the
        numeric fields that still need it (on the column: cheaper than in the expression)."""
        cat = pl.col(c.CATEGORY_ID)
        values: dict[str, list[tuple[str, pl.Expr, bool]]] = {}
        for cat_id, fields in self.by_category.items():
            for name, formula in fields:
                if name in names:
                    expr, unchecked = self._expr(formula, schema, as_of)
                    values.setdefault(name, []).append((cat_id, expr, unchecked))
        cols, checks = [], []
        for name, cases in values.items():
            # defer the check only when every category's value is an unchecked number
            defer = all(unchecked for _, _, unchecked in cases)
            exprs = [e if defer or not u else finite(e) for _, e, u in cases]
            chain = pl.when(cat == cases[0][0]).then(exprs[0])
            for (cat_id, _, _), expr in zip(cases[1:], exprs[1:], strict=True):
                chain = chain.when(cat == cat_id).then(expr)
            cols.append(chain.otherwise(None).alias(PREFIX + name))
            if defer:
                checks.append(finite(pl.col(PREFIX + name)).alias(PREFIX + name))
        return [cols, checks] if checks else [cols]

    def dtypes(self, call: Call) -> dict[str, pl.DataType]:
        """Output types of the ``personalization.*`` columns, resolved without data."""

        def probe() -> dict[str, pl.DataType]:
            frame = pl.LazyFrame(schema=dict(call.schema))
            for step in self._exprs(call):
                frame = frame.with_columns(step)
            out = frame.collect_schema()
            return {PREFIX + n: out[PREFIX + n] for n in self.fields if PREFIX + n in out}

        if not self.by_category:
            return {}
        return self.cached(("dtypes", call.schema_key), probe)

    def _json(self, call: Call) -> pl.Expr:
        # text around the static segments is cheaper on many rows; on a few rows, where each
        # operator's fixed cost counts, json_encode is (both write the same text)
        def build() -> pl.Expr:
            if self.segmented and call.large:
                text = self.layout.expr(self.dtypes(call))
                if text is not None:
                    return text.alias(PERSONALIZATION)
            return self._build_json()

        return self.cached(("json", call.schema_key, call.large), build)

    def _build_json(self) -> pl.Expr:
        cat = pl.col(c.CATEGORY_ID)
        chain: Any = pl
        for cat_id, fields in self.by_category.items():
            obj = pl.struct([pl.col(PREFIX + n).alias(n) for n, _ in fields]).struct.json_encode()
            chain = chain.when(cat == cat_id).then(obj)
        if chain is pl:
            return pl.lit("{}").alias(PERSONALIZATION)
        return chain.otherwise(pl.lit("{}")).alias(PERSONALIZATION)

    def _call_exprs(self, call: Call) -> list[list[pl.Expr]]:
        timed = any(
            f is not None and f.needs_as_of for fs in self.by_category.values() for _, f in fs
        )
        key = (call.schema_key, call.as_of if timed else None)
        return self.cached(key, lambda: self._exprs(call))

    def inputs(self, call: Call) -> set[str]:
        """Columns ``apply`` reads."""
        if not self.by_category:
            return set()
        names = {c.CATEGORY_ID}
        for e in (*(e for step in self._call_exprs(call) for e in step), self._json(call)):
            names.update(e.meta.root_names())
        return names

    def apply(self, lf: pl.LazyFrame, call: Call) -> pl.LazyFrame:
        if not self.by_category:
            return lf.with_columns(pl.lit("{}").alias(PERSONALIZATION))
        for step in self._call_exprs(call):
            lf = lf.with_columns(step)
        return lf.with_columns(self._json(call))
