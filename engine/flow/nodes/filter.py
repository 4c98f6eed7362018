"""``filter``: operator conditions on candidate fields (spec §9.3), phase 1 only.

Fields address ``offer.*``, ``customer.*``, ``request.*``, ``channel.*`` (also ``creative.*``
and ``attributes.*``); an offer's custom fields are reachable as ``offer.<name>``. A condition
on a missing field or null value fails (except ``is_null``). Dropped rows are marked with
reason ``filter <field> <operator> <value>``.
"""

from __future__ import annotations

import polars as pl

from engine.flow.conditions import compare
from engine.flow.configs import FilterConfig
from engine.flow.nodes.base import Call, Node, mark


def _column(field: str, schema: dict[str, pl.DataType]) -> tuple[pl.Expr, pl.DataType | None]:
    if field in schema:
        return pl.col(field), schema[field]
    if field.startswith("offer."):  # custom fields are bare columns
        bare = field.removeprefix("offer.")
        if bare in schema:
            return pl.col(bare), schema[bare]
    return pl.lit(None), None


class FilterNode(Node):
    config: FilterConfig

    def _exprs(self, call: Call) -> list[pl.Expr]:
        schema = dict(call.schema)
        conds = []
        for cond in self.config.conditions:
            expr, dtype = _column(cond.field, schema)
            conds.append(compare(expr, dtype, cond.operator, cond.value).fill_null(False))
        keep = (
            pl.all_horizontal(conds)
            if self.config.combinator == "AND"
            else pl.any_horizontal(conds)
        )
        text = f" {self.config.combinator.lower()} ".join(
            f"{x.field} {x.operator}" + ("" if x.value is None else f" {x.value}")
            for x in self.config.conditions
        )
        return mark(self.index, [(~keep, self.id, pl.lit(f"filter {text}"))], detail=call.trace)

    def expressions(self, call: Call) -> list[pl.Expr]:
        return self.cached((call.schema_key, call.trace), lambda: self._exprs(call))
