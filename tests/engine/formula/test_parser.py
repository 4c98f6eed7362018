from __future__ import annotations

import pytest

from engine.formula import FormulaError
from engine.formula._ast import (
    Binary,
    Boolean,
    Call,
    Conditional,
    Null,
    Number,
    Text,
    Unary,
    Variable,
)
from engine.formula._parser import parse

a, b, c, d, e = (Variable(n) for n in "abcde")


def n(x: float) -> Number:
    return Number(float(x))


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        # level 7: primaries
        ("42", n(42)),
        ('"hi"', Text("hi")),
        ("true", Boolean(True)),
        ("false", Boolean(False)),
        ("null", Null()),
        ("customer.loan_amount", Variable("customer.loan_amount")),
        ("((a))", a),
        ("min(a, 2)", Call("min", (a, n(2)))),
        ("concat()" if False else "coalesce(a)", Call("coalesce", (a,))),
        # level 6: unary binds tighter than everything else
        ("-a * b", Binary("*", Unary("-", a), b)),
        ("- -a", Unary("-", Unary("-", a))),
        ("--a", Unary("-", Unary("-", a))),
        ("+a", Unary("+", a)),
        ("!a == b", Binary("==", Unary("!", a), b)),
        ("not a == b", Binary("==", Unary("!", a), b)),
        ("-min(a)", Unary("-", Call("min", (a,)))),
        # level 5 over 4, both left-associative
        ("2 + 3 * 4", Binary("+", n(2), Binary("*", n(3), n(4)))),
        ("a - b - c", Binary("-", Binary("-", a, b), c)),
        ("a / b * c % d", Binary("%", Binary("*", Binary("/", a, b), c), d)),
        ("(a + b) * c", Binary("*", Binary("+", a, b), c)),
        # level 4 over comparisons (3)
        ("a + 1 > b * 2", Binary(">", Binary("+", a, n(1)), Binary("*", b, n(2)))),
        ("a <= b", Binary("<=", a, b)),
        ("a != b", Binary("!=", a, b)),
        ("(a < b) < c", Binary("<", Binary("<", a, b), c)),
        # comparisons over && (2) over || (1)
        ("a < b && c", Binary("&&", Binary("<", a, b), c)),
        ("a || b && c", Binary("||", a, Binary("&&", b, c))),
        ("a && b || c && d", Binary("||", Binary("&&", a, b), Binary("&&", c, d))),
        ("a or b and not c", Binary("||", a, Binary("&&", b, Unary("!", c)))),
        ("a && b && c", Binary("&&", Binary("&&", a, b), c)),
        # level 0: ternary is lowest and right-associative
        ("a || b ? c : d", Conditional(Binary("||", a, b), c, d)),
        ("a ? b : c ? d : e", Conditional(a, b, Conditional(c, d, e))),
        ("a ? b ? c : d : e", Conditional(a, Conditional(b, c, d), e)),
        ("(a ? b : c) ? d : e", Conditional(Conditional(a, b, c), d, e)),
        ("a ? b + 1 : c", Conditional(a, Binary("+", b, n(1)), c)),
        ('tier == "gold" ? 0.15 : 0.10', Conditional(Binary("==", Variable("tier"), Text("gold")),
                                                     n(0.15), n(0.1))),
        ("if(a, b, c)", Call("if", (a, b, c))),
    ],
)  # fmt: skip
def test_precedence_and_associativity(text: str, tree: object) -> None:
    assert parse(text) == tree


def test_nodes_remember_their_columns() -> None:
    tree = parse("price * (1 - rate)")
    assert isinstance(tree, Binary) and tree.column == 7
    assert isinstance(tree.right, Binary) and tree.right.column == 12
    assert tree.left == Variable("price") and tree.left.column == 1


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("", 1, "formula is empty"),
        ("   ", 1, "formula is empty"),
        ("(1 + 2", 7, "expected ')' to close '(' at column 1, found the end of the formula at "
                      "column 7"),
        ("round(price, 2", 15, "expected ',' or ')' to close 'round(' at column 1"),
        ("min(1 2)", 7, "expected ',' or ')' to close 'min(' at column 1, found number 2"),
        ("1 +", 4, "expected a value at column 4, found the end of the formula"),
        ("1 + * 2", 5, "expected a value at column 5, found '*'"),
        ("min(1,)", 7, "expected a value at column 7, found ')'"),
        ("1 2", 3, "unexpected number 2 at column 3; expected an operator or the end"),
        ("a b", 3, "unexpected 'b' at column 3"),
        ("(1))", 4, "unexpected ')' at column 4"),
        ("x ? 1", 6, "expected ':' for the '?' at column 3"),
        ("x ? 1 , 2", 7, "expected ':' for the '?' at column 3, found ','"),
        ("a < b < c", 7, "comparisons cannot be chained (column 7)"),
        ("a == b != c", 8, "comparisons cannot be chained"),
        ("a < b + 1 >= c", 11, "comparisons cannot be chained"),
        ("foo(1)", 1, "unknown function 'foo' at column 1"),
        ("MIN(1)", 1, "did you mean min()?"),
        ("customer.min(1)", 1, "unknown function 'customer.min'"),
        ("min()", 1, "min() at column 1 takes at least 1 argument, got 0"),
        ("pow(2)", 1, "pow() at column 1 takes 2 arguments, got 1"),
        ("round(1, 2, 3)", 1, "round() at column 1 takes 1 to 2 arguments, got 3"),
        ("sqrt(1, 2)", 1, "sqrt() at column 1 takes 1 argument, got 2"),
        ("round(x, n)", 10, "number of decimals must be a whole number from 0 to 15"),
        ("round(x, 1.5)", 10, "whole number"),
        ("round(x, 16)", 10, "whole number"),
        ("round(x, -1)", 10, "whole number"),
        ("and", 1, "expected a value at column 1, found 'and'"),
        ("1 +\n(", 6, "expected a value at column 6"),
    ],
)  # fmt: skip
def test_errors_say_what_and_where(text: str, column: int, message: str) -> None:
    with pytest.raises(FormulaError) as caught:
        parse(text)
    assert caught.value.column == column
    assert message in caught.value.message
    assert caught.value.details == [
        {"field": "formula", "message": caught.value.message, "column": column}
    ]
