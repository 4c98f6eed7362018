"""``response``: render each decision's creative content (spec §8.3, §9.3).

``creative.content`` is a JSON object of strings with placeholders ``{{var}}`` (``{var}``
and ``{{ var }}`` are normalized to ``{{var}}`` when the flow is compiled). A variable is
resolved, in order, from the creative's personalization mapping ``{variable, source,
fallback}`` (source such as ``customer.first_name`` or ``personalization.rate``), else from
``personalization.<var>``, ``customer.<var>``, ``attributes.<var>``, the offer custom field
``<var>``, ``offer.<var>``; a dotted variable names its column directly. Unresolved values
become the mapping's fallback, else "". Values are JSON-escaped; whole numbers print without
a trailing ``.0``.

Rendering is one ``concat_str`` per row: when the flow is compiled each creative's content
is split into static segments (columns ``_tpl_s<j>`` of the static candidate table) and
placeholder slots; every distinct (variable, mapping) gets one value column, and slot j
picks the value its creative's *shape* (sequence of placeholders, ``_tpl_k``) puts there.
No string search or per-variable replace runs at decision time, and only the final rows
are rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
import polars as pl

from engine.flow import columns as c
from engine.flow.conditions import resolve_attribute
from engine.flow.configs import ResponseConfig
from engine.flow.nodes.base import Call, CompileContext, Node
from engine.flow.nodes.compute import PREFIX

CONTENT = "_content"
_DOUBLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_SINGLE = re.compile(r"(?<!\{)\{([A-Za-z_][\w.]*)\}(?!\})")
NAMESPACES = (
    "customer.",
    "attributes.",
    "personalization.",
    "offer.",
    "creative.",
    "channel.",
    "placement.",
    "request.",
    "metrics.",
)


def normalize_placeholders(content: str | None) -> str | None:
    if content is None:
        return None
    return _SINGLE.sub(r"{{\1}}", _DOUBLE.sub(r"{{\1}}", content))


_ESCAPES = (["\\", '"', "\n", "\r", "\t"], ["\\\\", '\\"', "\\n", "\\r", "\\t"])


def _json_escape(expr: pl.Expr) -> pl.Expr:
    """Escape text for a JSON string literal (one multi-pattern pass)."""
    return expr.str.replace_many(*_ESCAPES)


def _escape_literal(text: str) -> str:
    return orjson.dumps(text).decode()[1:-1]


def _as_text(expr: pl.Expr, dtype: pl.DataType | None) -> pl.Expr:
    """Text for a template: strings escaped, whole floats without ``.0`` (7.0 -> "7")."""
    if dtype == pl.String:
        return _json_escape(expr)
    if dtype is not None and dtype.is_float():
        return expr.cast(pl.String).str.strip_suffix(".0")
    if dtype is not None and dtype.is_numeric():
        return expr.cast(pl.String)
    return _json_escape(expr.cast(pl.String, strict=False))


_SPLIT = re.compile(r"\{\{([A-Za-z_][\w.]*)\}\}")
Spec = tuple[str, str | None, str | None]  # variable, mapping source, fallback
SHAPE = "_tpl_k"  # the creative's shape


class ResponseNode(Node):
    config: ResponseConfig

    def prepare(self, ctx: CompileContext) -> None:
        """Split every creative's content into segments and placeholder slots.

        A *shape* is a creative's sequence of value specs (variable + mapping); creatives
        of one shape render with the same ``concat_str`` over their own segment columns.
        """
        self.personalization: set[str] = set()
        self.static_values: dict[int, pl.Expr] = {}  # see ``precompute``
        self.templates: dict[str, tuple[list[str], tuple[int, ...]]] = {}
        specs: dict[Spec, int] = {}
        shapes: dict[tuple[int, ...], int] = {}
        rows = []
        for content, mapping_json, creative_id in ctx.creatives.select(
            "creative.content", "creative.personalization", c.CREATIVE_ID
        ).iter_rows():
            mapping = {}
            for m in orjson.loads(mapping_json or "[]"):
                fallback = m.get("fallback")
                mapping[m["variable"]] = (
                    str(m["source"]),
                    None if fallback is None else str(fallback),
                )
            parts = _SPLIT.split(content or "")
            slots = tuple(
                specs.setdefault((v, *mapping[v]) if v in mapping else (v, None, None), len(specs))
                for v in parts[1::2]
            )
            rows.append((creative_id, parts[0::2], shapes.setdefault(slots, len(shapes))))
            self.templates[creative_id] = (parts[0::2], slots)
        self.specs = sorted(specs, key=specs.__getitem__)
        self.shapes = sorted(shapes, key=shapes.__getitem__)
        self.width = max((len(s) for s in self.shapes), default=0) if self.specs else 0
        data: dict[str, list[Any]] = {
            c.CREATIVE_ID: [r[0] for r in rows],
            SHAPE: [r[2] for r in rows],
        }
        for j in range(self.width + 1):
            data[f"_tpl_s{j}"] = [r[1][j] if j < len(r[1]) else "" for r in rows]
        schema = {c.CREATIVE_ID: pl.String(), SHAPE: pl.Int32()}
        schema |= {k: pl.String() for k in data if k.startswith("_tpl_s")}
        self.template = pl.DataFrame(data, schema=schema)

    def static_columns(self) -> pl.DataFrame | None:
        """Template columns joined onto the static candidate table by creative id."""
        return self.template if self.width else None

    def precompute(self, table: pl.DataFrame) -> pl.DataFrame:
        """Values that read the static candidate table only (offer fields, offer-only computed
        fields), as text columns ``_sval<k>`` of that table: computed once per flow."""
        self.static_values = {}
        columns = set(table.columns)
        exprs = []
        for k, spec in enumerate(self.specs if self.width else []):
            value = self._value(spec, table.schema)
            if set(value.meta.root_names()) <= columns:
                self.static_values[k] = value
                exprs.append(value.alias(f"_sval{k}"))
        return table.with_columns(exprs) if exprs else table

    def _text(self, name: str, schema: Mapping[str, pl.DataType]) -> pl.Expr | None:
        """One variable or mapping source as template text; None when nothing has it."""

        def text(n: str) -> pl.Expr:
            return _as_text(pl.col(n), schema.get(n))

        if name.startswith(PREFIX):
            return text(name) if name[len(PREFIX) :] in self.personalization else None
        if name.startswith(NAMESPACES):
            if name in schema:
                return text(name)
            bare = name.removeprefix("offer.")
            return text(bare) if bare in schema else None
        found: list[pl.Expr] = []
        if name in self.personalization:
            found.append(text(PREFIX + name))
        attr = resolve_attribute(name, schema)
        if attr:
            found.append(_as_text(*attr))
        found += [text(n) for n in (name, f"offer.{name}") if n in schema and n[0] != "_"]
        if not found:
            return None
        return found[0] if len(found) == 1 else pl.coalesce(found)

    def _value(self, spec: Spec, schema: Mapping[str, pl.DataType]) -> pl.Expr:
        var, source, fallback = spec
        value = self._text(source if source is not None else var, schema)
        if value is None:
            value = pl.lit(None, dtype=pl.String)
        if fallback is not None:
            value = value.fill_null(pl.lit(_escape_literal(fallback)))
        return value.fill_null("")

    def _exprs(self, call: Call) -> list[list[pl.Expr]]:
        if not self.width:
            return [[pl.col("creative.content").alias(CONTENT)]]
        values = []
        for k, spec in enumerate(self.specs):
            value = self._value(spec, call.schema)
            static = self.static_values.get(k)
            if static is not None and value.meta.eq(static):  # same lookup: use the column
                value = pl.col(f"_sval{k}")
            values.append(value.alias(f"_val{k}"))
        # slot j of a row takes the value its creative's shape puts there: a short when-chain
        # over value columns per slot, then one concat_str of segments and slot values
        shape = pl.col(SHAPE)
        parts = [pl.col("_tpl_s0")]
        for j in range(self.width):
            by_spec: dict[int, list[int]] = {}
            for i, slots in enumerate(self.shapes):
                if j < len(slots):
                    by_spec.setdefault(slots[j], []).append(i)
            chain = None
            for spec, shapes in by_spec.items():
                cond = shape == shapes[0] if len(shapes) == 1 else shape.is_in(shapes)
                chain = (pl.when(cond) if chain is None else chain.when(cond)).then(
                    pl.col(f"_val{spec}")
                )
            value = pl.lit("") if chain is None else chain.otherwise(pl.lit(""))
            parts += [value, pl.col(f"_tpl_s{j + 1}")]
        rendered = pl.when(pl.col(c.CREATIVE_ID).is_not_null()).then(pl.concat_str(parts))
        return [values, [rendered.alias(CONTENT)]]

    def inputs(self, call: Call) -> set[str]:
        """Columns ``apply`` reads."""
        steps = self.cached(call.schema_key, lambda: self._exprs(call))
        return {name for step in steps for e in step for name in e.meta.root_names()}

    def apply(self, lf: pl.LazyFrame, call: Call, *, render: bool = True) -> pl.LazyFrame:
        """Adds the value columns ``_val<k>`` and, with ``render``, the content."""
        steps = self.cached(call.schema_key, lambda: self._exprs(call))
        for step in steps if render else steps[:1]:
            lf = lf.with_columns(step)
        return lf

    @property
    def value_columns(self) -> list[str]:
        return [f"_val{k}" for k in range(len(self.specs))] if self.width else []

    def render(self, frame: pl.DataFrame) -> pl.Series:
        """The content of a few final rows (``creative.id`` + value columns), assembled in
        Python: the same segments and values the vectorized path concatenates, without the
        per-call planning cost of its expressions (the realtime path)."""
        ids = frame.get_column("creative_id").to_list()
        if not self.width:
            raw = frame.get_column("content")
            return raw
        values = [frame.get_column(name).to_list() for name in self.value_columns]
        out: list[str | None] = []
        for i, cid in enumerate(ids):
            template = self.templates.get(cid) if cid is not None else None
            if template is None:
                out.append(None)
                continue
            segments, slots = template
            pieces = [segments[0]]
            for j, spec in enumerate(slots):
                pieces += [values[spec][i], segments[j + 1]]
            out.append("".join(pieces))
        return pl.Series("content", out, dtype=pl.String)
