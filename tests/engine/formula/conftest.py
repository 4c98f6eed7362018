from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import polars as pl
import pytest

from engine.formula import compile

AS_OF = datetime(2024, 6, 1, 12, 0, 0)

Values = Callable[..., list[Any]]
Value = Callable[..., Any]


def run(
    text: str,
    data: Mapping[str, Any] | pl.DataFrame | None = None,
    *,
    bound: bool = True,
    as_of: datetime | None = AS_OF,
) -> list[Any]:
    """Evaluate ``text`` over a frame; ``bound=False`` compiles without the schema."""
    frame = data if isinstance(data, pl.DataFrame) else pl.DataFrame(data or {"_row": [0]})
    expr = compile(text).to_expr(frame.schema if bound else None, as_of=as_of)
    return frame.with_columns(expr.alias("__out__"))["__out__"].to_list()


@pytest.fixture
def values() -> Values:
    """``values(text, data, bound=True, as_of=AS_OF)`` -> the formula's value in each row."""
    return run


@pytest.fixture
def value() -> Value:
    """``value(text, **columns)`` -> the formula's value for one row of scalar columns."""

    def one(text: str, *, bound: bool = True, **columns: Any) -> Any:
        data = {name.replace("__", "."): [v] for name, v in columns.items()}
        (result,) = run(text, pl.DataFrame(data) if data else None, bound=bound)
        return result

    return one
