"""The ``personalization`` JSON object of each candidate, assembled as text.

Polars' ``struct.json_encode`` per category costs a struct and an encoder per row. Most of
the object is known per offer when the flow is compiled (the braces, the keys, the values
of offer-only fields), so it is kept in segment columns ``_pjs<j>`` of the static candidate
table; at decision time one ``concat_str`` puts the per-customer values between them:

    {"bonus_stars":  <value>  ,"urgency":"Ends soon"}
    `---- _pjs0 ---'         `-------- _pjs1 --------'

Values are written exactly as ``json_encode`` writes them (numbers as Polars prints them,
strings escaped like serde_json, null as ``null``); types it cannot write (dates, lists)
fall back to ``json_encode``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
import polars as pl

from engine.flow import columns as c

SEGMENT = "_pjs"
_SHORT = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROL = [chr(i) for i in range(32) if chr(i) not in _SHORT]
_FROM = [*_SHORT, *_CONTROL]
_TO = [*_SHORT.values(), *(f"\\u{ord(ch):04x}" for ch in _CONTROL)]


def json_value(expr: pl.Expr, dtype: pl.DataType | None) -> pl.Expr | None:
    """``expr`` as JSON text; None for types written by ``json_encode`` only."""
    if dtype is None or dtype == pl.Null:
        return pl.lit("null")
    if dtype == pl.String:
        quoted = pl.concat_str([pl.lit('"'), expr.str.replace_many(_FROM, _TO), pl.lit('"')])
        return quoted.fill_null("null")
    if dtype.is_float() or dtype.is_integer() or dtype == pl.Boolean:
        return expr.cast(pl.String).fill_null("null")
    return None


class JsonLayout:
    """Segments and per-customer slots of each category's object."""

    def __init__(
        self,
        fields: Mapping[str, Sequence[str]],  # category id -> field names, in object order
        static: set[str],  # fields stored in the static table (same for every customer)
        prefix: str,  # column prefix of the field values
    ) -> None:
        self.fields, self.static, self.prefix = fields, static, prefix
        self.slots = {cat: [n for n in names if n not in static] for cat, names in fields.items()}
        self.width = max((len(s) for s in self.slots.values()), default=0)

    def segments(self, schema: Mapping[str, pl.DataType]) -> list[pl.Expr] | None:
        """The segment columns, to compute over the static table; None if a static value has
        a type this module does not write."""
        cat = pl.col(c.CATEGORY_ID)
        per_cat: dict[str, list[list[pl.Expr]]] = {}
        for cat_id, names in self.fields.items():
            parts: list[list[pl.Expr]] = [[]]
            for i, name in enumerate(names):
                key = ("{" if i == 0 else ",") + orjson.dumps(name).decode() + ":"
                parts[-1].append(pl.lit(key))
                if name in self.static:
                    column = self.prefix + name
                    value = json_value(pl.col(column), schema.get(column))
                    if value is None:
                        return None
                    parts[-1].append(value)
                else:
                    parts.append([])
            parts[-1].append(pl.lit("}" if names else "{}"))
            per_cat[cat_id] = parts
        out = []
        for j in range(self.width + 1):
            chain = None
            for cat_id, parts in per_cat.items():
                text = pl.concat_str(parts[j]) if j < len(parts) else pl.lit("")
                chain = (pl.when(cat == cat_id) if chain is None else chain.when(cat == cat_id))
                chain = chain.then(text)
            other = pl.lit("{}" if j == 0 else "")
            out.append((other if chain is None else chain.otherwise(other)).alias(f"{SEGMENT}{j}"))
        return out

    def expr(self, dtypes: Mapping[str, pl.DataType]) -> pl.Expr | None:
        """The object's text; None if a value has a type this module does not write.

        A field's column is null outside its own category, so the slot's columns of one type
        are coalesced and written once (one conversion per type, not per category)."""
        cat = pl.col(c.CATEGORY_ID)
        parts = [pl.col(f"{SEGMENT}0")]
        for j in range(self.width):
            by_type: dict[pl.DataType | None, tuple[list[str], list[str]]] = {}
            for cat_id, slots in self.slots.items():
                if j < len(slots):
                    column = self.prefix + slots[j]
                    cats, columns = by_type.setdefault(dtypes.get(column), ([], []))
                    cats.append(cat_id)
                    if column not in columns:
                        columns.append(column)
            chain = None
            for dtype, (cats, columns) in by_type.items():
                raw = pl.col(columns[0]) if len(columns) == 1 else pl.coalesce(columns)
                value = json_value(raw, dtype)
                if value is None:
                    return None
                cond = cat == cats[0] if len(cats) == 1 else cat.is_in(cats)
                chain = (pl.when(cond) if chain is None else chain.when(cond)).then(value)
            parts += [pl.lit("") if chain is None else chain.otherwise(pl.lit("")),
                      pl.col(f"{SEGMENT}{j + 1}")]
        return parts[0] if len(parts) == 1 else pl.concat_str(parts)
