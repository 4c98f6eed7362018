"""The public API: compile, Formula, FormulaError."""

from __future__ import annotations

import ast
import doctest
from pathlib import Path

import polars as pl
import pytest

import engine.formula
from engine.errors import NextbestError, ValidationError
from engine.formula import Formula, FormulaError, compile, compile_formula
from engine.formula._ast import Binary, Number, Variable


def test_package_docstring_example_runs() -> None:
    assert doctest.testmod(engine.formula).failed == 0


def test_public_names() -> None:
    assert sorted(engine.formula.__all__) == [
        "Formula",
        "FormulaError",
        "compile",
        "compile_formula",
        "finite",
    ]
    assert compile_formula is compile


def test_formula_attributes() -> None:
    formula = compile("base_rate * (1 - customer.loyalty_score * 0.01) + min(base_rate, cap)")
    assert isinstance(formula, Formula)
    assert formula.text.startswith("base_rate")
    assert formula.variables == frozenset({"base_rate", "customer.loyalty_score", "cap"})
    assert not formula.needs_as_of
    assert compile("2 * x").ast == Binary("*", Number(2.0), Variable("x"))
    assert compile('"text only"').variables == frozenset()
    with pytest.raises(AttributeError):
        formula.text = "1"  # type: ignore[misc]


def test_compile_is_cached_by_text() -> None:
    compile.cache_clear()  # type: ignore[attr-defined]
    first = compile("a + 1")
    assert compile("a + 1") is first
    assert compile("a +  1") is not first
    assert compile.cache_info().hits == 1  # type: ignore[attr-defined]
    assert compile.cache_info().maxsize == 1024  # type: ignore[attr-defined]


def column_of(frame: pl.DataFrame, expr: pl.Expr) -> list[object]:
    return frame.with_columns(expr.alias("out"))["out"].to_list()


def test_to_expr_with_a_schema_names_or_nothing() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0], "y": [10, 20]})
    formula = compile("x + y + z")
    assert formula.variables == {"x", "y", "z"}
    assert column_of(frame, formula.to_expr(frame.schema)) == [None, None]
    assert column_of(frame, compile("x + y").to_expr(frame.schema)) == [11.0, 22.0]
    assert column_of(frame, compile("coalesce(z, x)").to_expr(["x", "y"])) == [1.0, 2.0]
    assert column_of(frame, compile("coalesce(z, x)").to_expr({"x", "y"})) == [1.0, 2.0]
    assert column_of(frame, compile("x * y").expr) == [10.0, 40.0]
    dtypes = {"x": pl.Float64, "y": pl.Int64}  # dtype classes work as well as instances
    assert column_of(frame, compile("x * y").to_expr(dtypes)) == [10.0, 40.0]
    with pytest.raises(pl.exceptions.ColumnNotFoundError):  # None: every variable must exist
        column_of(frame, formula.to_expr())
    with pytest.raises(FormulaError, match="columns must be"):
        formula.to_expr("xyz")
    with pytest.raises(FormulaError, match="must be a Polars data type"):
        formula.to_expr({"x": "Float64"})  # type: ignore[dict-item]
    assert column_of(frame, compile("coalesce(x, 1)").to_expr({"x": pl.List})) == [1.0, 1.0]


def test_constant_formulas_broadcast() -> None:
    frame = pl.DataFrame({"x": [1, 2, 3]})
    assert column_of(frame, compile("2 + 3 * 4").expr) == [14.0, 14.0, 14.0]
    assert column_of(frame, compile("missing * 2").to_expr(frame.schema)) == [None] * 3


def test_the_result_is_one_lazy_friendly_expression() -> None:
    lazy = pl.LazyFrame({"price": [10.0, 20.0], "tier": ["gold", "basic"]})
    expr = compile('price * (tier == "gold" ? 0.85 : 1)').to_expr(lazy.collect_schema())
    assert isinstance(expr, pl.Expr)
    out = lazy.with_columns(expr.alias("offer_price")).collect()
    assert out["offer_price"].to_list() == [8.5, 20.0]


def test_formula_error_is_a_validation_error() -> None:
    with pytest.raises(FormulaError) as caught:
        compile("round(price, 2")
    error = caught.value
    assert isinstance(error, ValidationError) and isinstance(error, NextbestError)
    assert error.code == "VALIDATION_ERROR" and error.http_status == 400
    assert error.column == 15 and error.field == "formula"
    assert error.to_dict() == {
        "code": "VALIDATION_ERROR",
        "message": "expected ',' or ')' to close 'round(' at column 1, "
        "found the end of the formula at column 15",
        "status": 400,
        "details": [{"field": "formula", "message": error.message, "column": 15}],
    }


@pytest.mark.parametrize("bad", [None, 12, b"1 + 2", ["1"], {"a": 1}])
def test_only_text_compiles(bad: object) -> None:
    with pytest.raises(FormulaError, match="a formula must be text"):
        compile(bad)  # type: ignore[arg-type]


FORBIDDEN_NAMES = {"eval", "exec", "__import__", "globals", "locals", "vars", "open", "builtins"}
FORBIDDEN_ATTRIBUTES = {"map_elements", "map_batches", "apply", "map_rows", "map_groups"}


def test_the_engine_never_executes_host_code_or_python_per_row() -> None:
    package = Path(engine.formula.__file__).parent
    sources = sorted(package.glob("*.py"))
    assert len(sources) >= 8
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                assert node.id not in FORBIDDEN_NAMES, f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in FORBIDDEN_ATTRIBUTES, f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "compile", f"builtin compile at {path.name}:{node.lineno}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None) or ""
                assert not {"builtins", "importlib", "pickle", "subprocess"} & {module, *names}


def test_unchecked_expression_needs_its_check_once_stored() -> None:
    formula = compile("reward * 1e308 * factor")
    schema = {"reward": pl.Float64(), "factor": pl.Float64()}
    expr, unchecked = formula.to_unchecked_expr(schema)
    assert unchecked
    frame = pl.DataFrame({"reward": [2.0, 1.0, None], "factor": [10.0, 0.5, 1.0]})
    raw = frame.select(expr.alias("v"))
    assert raw.get_column("v").to_list()[0] == float("inf")
    checked = raw.select(engine.formula.finite(pl.col("v")))
    want = frame.select(formula.to_expr(schema).alias("v"))
    assert checked.get_column("v").to_list() == [None, 5e307, None]
    assert want.get_column("v").to_list() == [None, 5e307, None]
    assert compile("len(name)").to_unchecked_expr({"name": pl.String()})[1] is False
