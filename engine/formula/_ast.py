"""The typed syntax tree of a formula: small frozen dataclasses, compared without positions.

``column`` (1-based) is where the node starts in the formula text (for binary and ternary
nodes: where the operator is); it is ignored by ``==`` so that trees built by hand in tests
compare equal to parsed ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

UnaryOp = Literal["-", "+", "!"]
BinaryOp = Literal["||", "&&", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%"]
COMPARISONS: frozenset[str] = frozenset({"==", "!=", "<", "<=", ">", ">="})


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Text:
    value: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Boolean:
    value: bool
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Null:
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Variable:
    """A flat identifier: ``customer.loan_amount`` is one name, the column of that name."""

    name: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    op: UnaryOp
    operand: Node
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    op: BinaryOp
    left: Node
    right: Node
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Conditional:
    """``condition ? then : otherwise``."""

    condition: Node
    then: Node
    otherwise: Node
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    column: int = field(default=0, compare=False)


Node = Number | Text | Boolean | Null | Variable | Unary | Binary | Conditional | Call


def children(node: Node) -> tuple[Node, ...]:
    match node:
        case Unary(operand=operand):
            return (operand,)
        case Binary(left=left, right=right):
            return (left, right)
        case Conditional(condition=condition, then=then, otherwise=otherwise):
            return (condition, then, otherwise)
        case Call(args=args):
            return args
        case _:
            return ()


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children (iterative: no recursion limit)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def height(node: Node, weight: Callable[[Node], int] = lambda _: 1) -> tuple[int, Node]:
    """The largest sum of ``weight`` along a root-to-leaf path, and the leaf ending it."""
    best, deepest = 0, node
    stack = [(node, weight(node))]
    while stack:
        current, total = stack.pop()
        if total > best:
            best, deepest = total, current
        stack.extend((child, total + weight(child)) for child in children(current))
    return best, deepest


def variables(node: Node) -> frozenset[str]:
    return frozenset(n.name for n in walk(node) if isinstance(n, Variable))


__all__ = [
    "COMPARISONS",
    "Binary",
    "BinaryOp",
    "Boolean",
    "Call",
    "Conditional",
    "Node",
    "Null",
    "Number",
    "Text",
    "Unary",
    "UnaryOp",
    "Variable",
    "children",
    "height",
    "variables",
    "walk",
]
