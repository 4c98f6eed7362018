"""Size, depth and complexity limits, and the Polars stack-safety margin behind them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.formula import FormulaError, compile
from engine.formula._parser import MAX_COST, MAX_DEPTH
from engine.formula._tokens import MAX_LENGTH

ROOT = Path(__file__).resolve().parents[3]


def nest(template: str, inner: str, times: int) -> str:
    text = inner
    for _ in range(times):
        text = template.replace("@", text)
    return text


def test_limits_are_the_documented_ones() -> None:
    assert (MAX_LENGTH, MAX_DEPTH) == (8192, 64)


@pytest.mark.parametrize(
    ("template", "levels"),
    [
        ("(@)", MAX_DEPTH - 1),  # parentheses
        ("-@", MAX_DEPTH - 1),  # unary operators
        ("!@", MAX_DEPTH - 1),
        ("abs(@)", MAX_DEPTH - 1),  # calls
        ("x ? 1 : @", MAX_DEPTH - 1),  # ternaries
        ("@ + 1", MAX_DEPTH - 1),  # a chain of operators is a deep tree too
    ],
)
def test_depth_limit(template: str, levels: int) -> None:
    compile(nest(template, "x", levels))
    with pytest.raises(FormulaError, match="nested too deeply") as caught:
        compile(nest(template, "x", levels + 2))
    assert caught.value.column is not None


def test_deep_nesting_never_reaches_python_recursion_limits() -> None:
    for text in ("(" * 8000, "-" * 8000 + "1", "not " * 2000 + "1", "abs(" * 2000):
        with pytest.raises(FormulaError, match="nested too deeply"):
            compile(text)


def test_length_limit() -> None:
    compile("x" + " " * (MAX_LENGTH - 1))
    with pytest.raises(FormulaError, match="too long") as caught:
        compile("x" + " " * MAX_LENGTH)
    assert caught.value.column == MAX_LENGTH + 1


def test_complexity_limit_refuses_heavy_nesting_that_depth_allows() -> None:
    compile(nest("clamp(@, 0, 1)", "x", 25))
    with pytest.raises(FormulaError, match="too complex") as caught:
        compile(nest("clamp(@, 0, 1)", "x", 40))
    assert caught.value.column is not None
    assert MAX_COST >= 3 * MAX_DEPTH  # ordinary operators can always use the full depth


# Each template is nested as deep as compile() allows and evaluated by Polars in a child
# process whose worker threads get 1 MB of stack, half the default: Polars overflows its
# stack (a crash, not an exception) on deep expressions, so the limits need that margin.
STACK_CHECK = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    import polars as pl
    from engine.formula import FormulaError, compile

    frame = pl.DataFrame({
        "x": [1.5, None, -2.0], "s": ["a", None, "12"],
        "z": [datetime(2024, 1, 1, tzinfo=timezone.utc)] * 3,
    })
    templates = [line.split(" | ") for line in sys.stdin.read().splitlines()]
    for template, inner in templates:
        low, high = 0, 200
        while low < high:  # the deepest nesting that compiles
            middle = (low + high + 1) // 2
            text = inner
            for _ in range(middle):
                text = template.replace("@", text)
            try:
                compile(text)
                low = middle
            except FormulaError:
                high = middle - 1
        text = inner
        for _ in range(low):
            text = template.replace("@", text)
        for columns in (frame.schema, None):
            expr = compile(text).to_expr(columns, as_of=datetime(2024, 6, 1))
            frame.with_columns(expr.alias("out"))
        print(template, low, flush=True)
    """
)
TEMPLATES = [
    ("clamp(@, -1, 2)", "x"),
    ("min(@, x, 3)", "x"),
    ("days_since(concat(@))", "s"),
    ("days_since(if(@, z, z))", "z"),
    ('contains(@, "1")', "s"),
    ("(@ && s)", "x"),
    ("coalesce(@, s, 1)", "x"),
    ('s ? @ : "z"', "s"),
    ("log(@)", "x"),
    ("!@", "s"),
    ("@ + x", "x"),
    ('@ + "a"', "s"),
    ("(@ < s) + 1", "x"),
    ("if(z < z, @, z)", "z"),
    ("round(@, 2)", "x"),
    ('lower(@) + "b"', "s"),
]


def test_deepest_allowed_formulas_run_on_half_the_polars_stack() -> None:
    env = {**os.environ, "RUST_MIN_STACK": str(1024 * 1024), "PYTHONPATH": str(ROOT)}
    lines = "\n".join(f"{template} | {inner}" for template, inner in TEMPLATES)
    result = subprocess.run(
        [sys.executable, "-c", STACK_CHECK],
        input=lines,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    done = result.stdout.splitlines()
    assert len(done) == len(TEMPLATES)
    assert all(int(line.rsplit(" ", 1)[1]) >= 8 for line in done), done
