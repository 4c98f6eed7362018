"""Differential test: the compiled Polars expression agrees with the reference interpreter.

Hypothesis builds syntax trees, renders them to text with as few parentheses as the
documented precedence allows, and checks that (1) the parser reads the text back into the
same tree and (2) compiled expression and reference interpreter give identical values on
random rows with nulls.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from engine.formula import compile
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
from tests.engine.formula.reference import Reference

AS_OF = datetime(2024, 6, 1, 12, 0, 0)
SCHEMA: dict[str, pl.DataType] = {
    "n1": pl.Float64(),
    "customer.score": pl.Float64(),
    "i1": pl.Int64(),
    "b1": pl.Boolean(),
    "s1": pl.String(),
    "attributes.tier": pl.String(),
    "c1": pl.Categorical(),
    "d1": pl.Date(),
    "t1": pl.Datetime("us"),
}
COLUMN_VALUES: dict[str, list[Any]] = {
    "n1": [0.0, -0.0, 1.0, -2.5, 3.0, 0.1, 7.0, 2.5, 1e-7, 1e300, -1e300, 0.5, 12.5],
    "customer.score": [0.0, 1.0, 10.0, -3.0, 99.5, 0.25],
    "i1": [0, 1, -3, 10, 2**40],
    "b1": [True, False],
    "s1": ["", "0", "12.5", "abc", "-3", "1e3", " 7", "gold", "Gold", "2024-01-15"],
    "attributes.tier": ["gold", "silver", "", "2024-05-31T18:00:00Z", "G", 'a"b'],
    "c1": ["gold", "x", ""],
    "d1": [date(2024, 1, 1), date(2023, 6, 15), date(2024, 6, 1)],
    "t1": [datetime(2024, 1, 1, 12, 30), datetime(2024, 3, 1, 0, 0, 0, 500)],
}
NAMES = [*SCHEMA, "missing", "customer.unknown"]
NUMBERS = [0.0, 1.0, 2.0, 2.5, 0.1, 3.0, 10.0, 100.0, 1e300, 1e-7, 0.5, 7.0, 1.005, 2.675]
TEXTS = ["", "a", "gold", "12.5", "0", "A b", 'x"y', "2024-05-01", "é\n"]
BINARY = ["||", "&&", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%"]
ARITY = {
    "min": (1, 3), "max": (1, 3), "floor": (1, 1), "ceil": (1, 1), "abs": (1, 1),
    "sqrt": (1, 1), "pow": (2, 2), "log": (1, 1), "exp": (1, 1), "clamp": (3, 3),
    "coalesce": (1, 3), "concat": (1, 3), "lower": (1, 1), "upper": (1, 1), "len": (1, 1),
    "contains": (2, 2), "starts_with": (2, 2), "if": (3, 3), "days_since": (1, 1),
}  # fmt: skip
PRECEDENCE = {
    "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "+": 4, "-": 4, "*": 5, "/": 5, "%": 5,
}  # fmt: skip


# -- trees ----------------------------------------------------------------------------------

leaves = st.one_of(
    st.sampled_from(NUMBERS).map(Number),
    st.sampled_from(TEXTS).map(Text),
    st.booleans().map(Boolean),
    st.just(Null()),
    st.sampled_from(NAMES).map(Variable),
)


def _calls(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    def build(name: str) -> st.SearchStrategy[Node]:
        low, high = ARITY[name]
        args = st.lists(children, min_size=low, max_size=high).map(tuple)
        return args.map(lambda a: Call(name, a))

    rounded = st.tuples(children, st.sampled_from([None, 0, 1, 2, 15])).map(
        lambda t: Call("round", (t[0],) if t[1] is None else (t[0], Number(float(t[1]))))
    )
    return st.one_of(rounded, st.sampled_from(sorted(ARITY)).flatmap(build))


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(Unary, st.sampled_from(["-", "+", "!"]), children),
        st.builds(Binary, st.sampled_from(BINARY), children, children),
        st.builds(Conditional, children, children, children),
        _calls(children),
    )


trees = st.recursive(leaves, _extend, max_leaves=12)


def precedence(node: Node) -> int:
    if isinstance(node, Conditional):
        return 0
    if isinstance(node, Binary):
        return PRECEDENCE[node.op]
    if isinstance(node, Unary):
        return 6
    return 7


def render(node: Node) -> str:
    """Text for ``node`` with only the parentheses the precedence table requires."""
    if isinstance(node, Number):
        return repr(node.value)
    if isinstance(node, Text):
        return json.dumps(node.value, ensure_ascii=False)
    if isinstance(node, Boolean):
        return "true" if node.value else "false"
    if isinstance(node, Null):
        return "null"
    if isinstance(node, Variable):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(render(a) for a in node.args)})"
    if isinstance(node, Unary):
        return node.op + wrap(node.operand, precedence(node.operand) < 6)
    if isinstance(node, Binary):
        level = PRECEDENCE[node.op]
        left_parens = precedence(node.left) < level or (level == 3 and precedence(node.left) == 3)
        right_parens = precedence(node.right) <= level
        return f"{wrap(node.left, left_parens)} {node.op} {wrap(node.right, right_parens)}"
    assert isinstance(node, Conditional)
    condition = wrap(node.condition, precedence(node.condition) == 0)
    return f"{condition} ? {render(node.then)} : {render(node.otherwise)}"


def wrap(node: Node, parens: bool) -> str:
    return f"({render(node)})" if parens else render(node)


# -- rows -----------------------------------------------------------------------------------


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    height = draw(st.integers(min_value=1, max_value=6))
    data = {
        name: draw(st.lists(st.none() | st.sampled_from(pool), min_size=height, max_size=height))
        for name, pool in COLUMN_VALUES.items()
    }
    return pl.DataFrame(data, schema=SCHEMA)


def same(got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is None and want is None
    if isinstance(want, float):
        return isinstance(got, float) and (got == want or math.isclose(got, want, rel_tol=1e-12))
    return type(got) is type(want) and got == want


def check(tree: Node, frame: pl.DataFrame) -> None:
    text = render(tree)
    if currently_in_test_context():
        note(f"formula: {text}\nframe: {frame.to_dicts()}")
    formula = compile(text)
    assert formula.ast == tree, f"parsed differently: {text}"
    got = frame.with_columns(formula.to_expr(frame.schema, as_of=AS_OF).alias("__out__"))
    reference = Reference(tree, frame.schema, AS_OF)
    for row, value in zip(frame.to_dicts(), got["__out__"].to_list(), strict=True):
        want = reference.evaluate(row)
        assert same(value, want), f"{text!r} on {row}: compiled {value!r}, reference {want!r}"


DIFFERENTIAL = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@DIFFERENTIAL
@given(trees, frames())
def test_compiled_matches_reference(tree: Node, frame: pl.DataFrame) -> None:
    check(tree, frame)


@pytest.mark.slow
@settings(DIFFERENTIAL, max_examples=5000)
@given(trees, frames())
def test_compiled_matches_reference_at_length(tree: Node, frame: pl.DataFrame) -> None:
    check(tree, frame)


@pytest.mark.parametrize(
    "text",
    [
        "n1 % customer.score",
        "round(n1 * 3.7, 2) + floor(-n1)",
        '"v" + n1 + i1',
        "min(n1, i1, customer.score) < max(s1, 2)",
        'if(s1, s1 + "!", n1)',
        "days_since(d1) - days_since(t1) + days_since(attributes.tier)",
        'd1 < t1 || d1 == "2024-01-01"',
        'coalesce(missing, s1, n1) == "0"',
        "pow(customer.score, 0.5) + log(n1) + exp(i1) + sqrt(n1)",
        "clamp(n1, -1, i1) * !b1",
        'lower(c1) + upper(attributes.tier) + len(s1) + contains(s1, "a") + starts_with(c1, "g")',
    ],
)
def test_hand_picked_formulas_match_reference(text: str) -> None:
    rows = {name: [*values, None] for name, values in COLUMN_VALUES.items()}
    height = max(len(v) for v in rows.values())
    data = {name: (v * height)[:height] for name, v in rows.items()}
    check(compile(text).ast, pl.DataFrame(data, schema=SCHEMA))
