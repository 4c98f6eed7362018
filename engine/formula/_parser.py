"""Precedence-climbing parser: tokens -> :mod:`engine.formula._ast` tree.

Binary operators are parsed in a loop, so the Python recursion depth is bounded by the
nesting depth of the formula, which is capped at ``MAX_DEPTH``; the height of the finished
tree (which also counts chains such as ``a + b + c``) is capped at the same number, so the
compiler never sees a deep tree. Every step consumes a token or returns, so parse time is
linear in the length of the formula.

Polars walks expressions recursively on worker threads with small stacks (2 MB), and it
crashes the process - no exception - at roughly 450 nested function nodes (``fill_null``,
``replace``, ``str.*``, ...). :func:`cost` bounds how many such nodes one syntax node adds;
a root-to-leaf path may cost at most ``MAX_COST``, about half of what Polars survives
(``tests/engine/formula/test_limits.py`` checks the worst cases on a 1 MB stack).
"""

from __future__ import annotations

from engine.formula._ast import (
    COMPARISONS,
    Binary,
    BinaryOp,
    Boolean,
    Call,
    Conditional,
    Node,
    Null,
    Number,
    Text,
    Unary,
    UnaryOp,
    Variable,
    height,
)
from engine.formula._errors import FormulaError
from engine.formula._functions import FUNCTIONS, check_call
from engine.formula._tokens import Token, TokenKind, shorten, tokenize

MAX_DEPTH = 64
MAX_COST = 200
PRECEDENCE: dict[str, int] = {
    "||": 1, "or": 1,
    "&&": 2, "and": 2,
    "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
    "+": 4, "-": 4,
    "*": 5, "/": 5, "%": 5,
}  # fmt: skip
CANONICAL: dict[str, str] = {"or": "||", "and": "&&", "not": "!"}
UNARY = frozenset({"-", "+", "!", "not"})


def parse(text: str) -> Node:
    """Parse a whole formula; raises :class:`FormulaError` with the column of the problem."""
    tokens = tokenize(text)
    if tokens[0].kind is TokenKind.END:
        raise FormulaError("formula is empty", column=1)
    parser = _Parser(tokens)
    tree = parser.expression(1)
    end = parser.peek()
    if end.kind is not TokenKind.END:
        raise FormulaError(
            f"unexpected {end.describe()} at column {end.column}; "
            "expected an operator or the end of the formula",
            column=end.column,
        )
    depth, deepest = height(tree)
    if depth > MAX_DEPTH:
        raise _too_deep(deepest.column)
    total, deepest = height(tree, cost)
    if total > MAX_COST:
        raise FormulaError(
            f"formula is too complex at column {deepest.column}: too many functions and "
            "operators are nested inside each other; split it into several computed fields",
            column=deepest.column,
        )
    return tree


def cost(node: Node) -> int:
    """An upper bound of the Polars function nodes that ``node`` adds above its children."""
    match node:
        case Call(name=name):
            return FUNCTIONS[name].cost
        case Unary(op="!"):
            return 2
        case Binary(op=op):
            return 3 if op in COMPARISONS else 2
        case Unary() | Variable():
            return 1
        case Conditional():
            return 3
    return 0


def _too_deep(column: int) -> FormulaError:
    return FormulaError(
        f"formula is nested too deeply at column {column}: at most {MAX_DEPTH} levels of "
        "operators, functions and parentheses are allowed",
        column=column,
    )


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._pos = 0

    def peek(self) -> Token:
        return self._tokens[self._pos]

    def _advance(self) -> Token:
        token = self._tokens[self._pos]
        if token.kind is not TokenKind.END:
            self._pos += 1
        return token

    def _at(self, spelling: str) -> bool:
        token = self._tokens[self._pos]
        return token.text == spelling and token.kind not in (TokenKind.TEXT, TokenKind.NUMBER)

    def expression(self, depth: int) -> Node:
        """ternary := or_expr ['?' ternary ':' ternary]   (right-associative, lowest)."""
        if depth > MAX_DEPTH:
            raise _too_deep(self.peek().column)
        condition = self._binary(1, depth)
        if not self._at("?"):
            return condition
        question = self._advance()
        then = self.expression(depth + 1)
        if not self._at(":"):
            found = self.peek()
            raise FormulaError(
                f"expected ':' for the '?' at column {question.column}, "
                f"found {found.describe()} at column {found.column}",
                column=found.column,
            )
        self._advance()
        otherwise = self.expression(depth + 1)
        return Conditional(condition, then, otherwise, question.column)

    def _binary(self, min_precedence: int, depth: int) -> Node:
        left = self._unary(depth)
        compared = False
        while True:
            token = self.peek()
            if token.kind not in (TokenKind.OPERATOR, TokenKind.KEYWORD):
                return left
            precedence = PRECEDENCE.get(token.text)
            if precedence is None or precedence < min_precedence:
                return left
            if precedence == 3 and compared:
                raise FormulaError(
                    f"comparisons cannot be chained (column {token.column}); "
                    "combine them with &&, e.g. a < b && b < c",
                    column=token.column,
                )
            self._advance()
            right = self._binary(precedence + 1, depth)
            op: BinaryOp = CANONICAL.get(token.text, token.text)  # type: ignore[assignment]
            left = Binary(op, left, right, token.column)
            compared = op in COMPARISONS

    def _unary(self, depth: int) -> Node:
        token = self.peek()
        if token.kind in (TokenKind.OPERATOR, TokenKind.KEYWORD) and token.text in UNARY:
            if depth + 1 > MAX_DEPTH:
                raise _too_deep(token.column)
            self._advance()
            operand = self._unary(depth + 1)
            op: UnaryOp = CANONICAL.get(token.text, token.text)  # type: ignore[assignment]
            return Unary(op, operand, token.column)
        return self._primary(depth)

    def _primary(self, depth: int) -> Node:
        token = self._advance()
        kind, column = token.kind, token.column
        if kind is TokenKind.NUMBER:
            return Number(token.value, column)  # type: ignore[arg-type]
        if kind is TokenKind.TEXT:
            return Text(token.value, column)  # type: ignore[arg-type]
        if kind is TokenKind.KEYWORD and token.text in ("true", "false"):
            return Boolean(token.text == "true", column)
        if kind is TokenKind.KEYWORD and token.text == "null":
            return Null(column)
        if kind is TokenKind.NAME:
            if self._at("("):
                return self._call(token, depth)
            return Variable(token.text, column)
        if kind is TokenKind.PUNCTUATION and token.text == "(":
            inner = self.expression(depth + 1)
            self._close(column, "(")
            return inner
        raise FormulaError(
            f"expected a value at column {column}, found {token.describe()}", column=column
        )

    def _call(self, name: Token, depth: int) -> Node:
        self._advance()  # the "("
        args: list[Node] = []
        if not self._at(")"):
            args.append(self.expression(depth + 1))
            while self._at(","):
                self._advance()
                args.append(self.expression(depth + 1))
        self._close(name.column, f"{shorten(name.text)}(")
        check_call(name.text, args, name.column)
        return Call(name.text, tuple(args), name.column)

    def _close(self, opened_at: int, what: str) -> None:
        token = self.peek()
        if not self._at(")"):
            expected = "',' or ')'" if what != "(" else "')'"
            raise FormulaError(
                f"expected {expected} to close '{what}' at column {opened_at}, "
                f"found {token.describe()} at column {token.column}",
                column=token.column,
            )
        self._advance()


__all__ = ["MAX_DEPTH", "parse"]
