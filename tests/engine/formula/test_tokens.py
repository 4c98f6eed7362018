from __future__ import annotations

import pytest

from engine.formula import FormulaError
from engine.formula._tokens import MAX_LENGTH, TokenKind, tokenize


def kinds_and_values(text: str) -> list[tuple[str, object]]:
    return [(t.kind.value, t.value if t.value is not None else t.text) for t in tokenize(text)[:-1]]


@pytest.mark.parametrize(
    ("text", "number"),
    [("0", 0.0), ("42", 42.0), ("3.25", 3.25), (".5", 0.5), ("1e3", 1000.0), ("2.5E-2", 0.025),
     ("7e+1", 70.0), ("1e-400", 0.0), ("00012", 12.0)],
)  # fmt: skip
def test_numbers(text: str, number: float) -> None:
    assert kinds_and_values(text) == [("number", number)]


@pytest.mark.parametrize(
    ("source", "decoded"),
    [
        (r'""', ""),
        (r'"gold"', "gold"),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"back\\slash"', "back\\slash"),
        (r'"a\nb\tc\rd\/e"', "a\nb\tc\rd/e"),
        (r'"caf\u00e9"', "café"),
        (r'"\ud83d\ude00"', "\U0001f600"),
        ('"raw é 😀 \x00 nul"', "raw é 😀 \x00 nul"),
        ('"it\'s"', "it's"),
    ],
)
def test_text_escapes(source: str, decoded: str) -> None:
    assert kinds_and_values(source) == [("text", decoded)]


def test_names_keep_their_dots_and_keywords_are_recognised() -> None:
    assert kinds_and_values("customer.loan_amount attributes.tier metrics.ctr_30d base_rate") == [
        ("name", "customer.loan_amount"),
        ("name", "attributes.tier"),
        ("name", "metrics.ctr_30d"),
        ("name", "base_rate"),
    ]
    assert [t.kind for t in tokenize("true false null and or not")[:-1]] == [TokenKind.KEYWORD] * 6
    assert kinds_and_values("customer.not TRUE") == [("name", "customer.not"), ("name", "TRUE")]


def test_operators_take_the_longest_match() -> None:
    spelled = [t.text for t in tokenize("a<=b>=c==d!=e&&f||!g<h>i?j:k+-*/%(,)")[:-1]]
    assert spelled == [
        "a", "<=", "b", ">=", "c", "==", "d", "!=", "e", "&&", "f", "||", "!", "g", "<", "h",
        ">", "i", "?", "j", ":", "k", "+", "-", "*", "/", "%", "(", ",", ")",
    ]  # fmt: skip


def test_columns_are_one_based_positions() -> None:
    assert [t.column for t in tokenize('ab + "x" * 2')] == [1, 4, 6, 10, 12, 13]


def test_whitespace_includes_newlines_and_tabs() -> None:
    assert kinds_and_values("1\n+\t2\r\n") == [("number", 1.0), ("operator", "+"), ("number", 2.0)]


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("a = 1", 3, "use '=='"),
        ("a & b", 3, "use '&&'"),
        ("a | b", 3, "use '||'"),
        ("'gold'", 1, "double quotes"),
        ("2 ^ 3", 3, "pow(x, y)"),
        ("a; b", 2, "single expression"),
        ("x @ y", 3, "unexpected character '@'"),
        ("1 \x00", 3, "U+0000"),
        ("é", 1, "unexpected character 'é'"),
        ("١٢", 1, "unexpected character"),
        ('"open', 6, "missing its closing"),
        (r'"bad \q"', 6, "unknown escape"),
        (r'"\u12"', 2, "four hex digits"),
        (r'"\ud800"', 2, "surrogate"),
        (r'"\udc00\ud800"', 2, "surrogate"),
        ('"lone \ud800"', 7, "invalid character"),
        ("1e999", 1, "too large"),
        ("2x", 2, "'x' cannot follow '2'"),
        ("1.2.3", 4, "cannot follow"),
        ("1e", 2, "cannot follow"),
        ("customer.", 9, "cannot end with '.'"),
    ],
)
def test_errors_name_the_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(FormulaError) as caught:
        tokenize(text)
    assert caught.value.column == column
    assert fragment in str(caught.value)


def test_length_limit() -> None:
    assert tokenize("1" + " " * (MAX_LENGTH - 1))[0].value == 1.0
    with pytest.raises(FormulaError, match="too long: 8193 characters, the limit is 8192"):
        tokenize("1" + " " * MAX_LENGTH)
