"""Tokenizer: formula text -> a list of tokens, in one left-to-right pass (linear time).

Columns are 1-based character positions in the formula text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from engine.formula._errors import FormulaError

MAX_LENGTH = 8192
KEYWORDS = frozenset({"true", "false", "null", "and", "or", "not"})
# Two-character operators first so that "<=" never splits into "<" and "=".
OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "+", "-", "*", "/", "%", "<", ">", "!", "?", ":")
PUNCTUATION = "(),"
SPACE = " \t\r\n"
DIGITS = frozenset("0123456789")
ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "r": "\r", "t": "\t"}
HINTS = {
    "=": "use '==' to compare",
    "&": "use '&&' (or 'and')",
    "|": "use '||' (or 'or')",
    "'": 'text must be written in double quotes, e.g. "gold"',
    "^": "use pow(x, y) for powers",
    "[": "lists are not supported",
    "{": "objects are not supported",
    ";": "a formula is a single expression",
}

# No nested quantifiers: both patterns match in time linear in their length.
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_WORD_CHAR = re.compile(r"[A-Za-z0-9_.]")


class TokenKind(StrEnum):
    NUMBER = "number"
    TEXT = "text"
    NAME = "name"
    KEYWORD = "keyword"
    OPERATOR = "operator"
    PUNCTUATION = "punctuation"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str  # the source spelling (operators, names, keywords) or a short description
    column: int
    value: float | str | None = None  # parsed value of NUMBER and TEXT tokens

    def describe(self) -> str:
        """How the token is named in an error message."""
        if self.kind is TokenKind.END:
            return "the end of the formula"
        if self.kind is TokenKind.TEXT:
            return "text"
        if self.kind is TokenKind.NUMBER:
            return f"number {shorten(self.text)}"
        return f"'{shorten(self.text)}'"


def show_char(char: str) -> str:
    """A character as an error message shows it: printable ones quoted, others as U+XXXX."""
    if char == "'":
        return '"\'"'
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    return f"U+{ord(char):04X}"


def shorten(spelling: str, limit: int = 40) -> str:
    """A name or number cut to ``limit`` characters for an error message."""
    return spelling if len(spelling) <= limit else spelling[: limit - 3] + "..."


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with one END token; raises :class:`FormulaError`."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(
            f"formula is too long: {len(text)} characters, the limit is {MAX_LENGTH}",
            column=MAX_LENGTH + 1,
        )
    tokens: list[Token] = []
    pos, size = 0, len(text)
    while pos < size:
        char = text[pos]
        column = pos + 1
        if char in SPACE:
            pos += 1
        elif char in DIGITS or (char == "." and pos + 1 < size and text[pos + 1] in DIGITS):
            pos = _number(text, pos, tokens)
        elif char.isascii() and (char.isalpha() or char == "_"):
            pos = _name(text, pos, tokens)
        elif char == '"':
            pos = _text(text, pos, tokens)
        elif char in PUNCTUATION:
            tokens.append(Token(TokenKind.PUNCTUATION, char, column))
            pos += 1
        else:
            operator = next((op for op in OPERATORS if text.startswith(op, pos)), None)
            if operator is None:
                hint = HINTS.get(char)
                message = f"unexpected character {show_char(char)} at column {column}"
                raise FormulaError(f"{message}; {hint}" if hint else message, column=column)
            tokens.append(Token(TokenKind.OPERATOR, operator, column))
            pos += len(operator)
    tokens.append(Token(TokenKind.END, "", size + 1))
    return tokens


def _number(text: str, pos: int, tokens: list[Token]) -> int:
    match = _NUMBER.match(text, pos)
    assert match is not None  # the caller saw a digit, or a dot followed by a digit
    end = match.end()
    spelling = match.group()
    if end < len(text) and _WORD_CHAR.match(text, end):
        raise FormulaError(
            f"malformed number at column {pos + 1}: {show_char(text[end])} cannot follow "
            f"'{shorten(spelling)}'",
            column=end + 1,
        )
    value = float(spelling)
    if math.isinf(value):
        raise FormulaError(
            f"number at column {pos + 1} is too large (the largest is about 1.8e308)",
            column=pos + 1,
        )
    tokens.append(Token(TokenKind.NUMBER, spelling, pos + 1, value))
    return end


def _name(text: str, pos: int, tokens: list[Token]) -> int:
    match = _NAME.match(text, pos)
    assert match is not None  # the caller saw a letter or an underscore
    end = match.end()
    if text.startswith(".", end):
        raise FormulaError(
            f"name '{shorten(match.group())}.' at column {pos + 1} cannot end with '.'",
            column=end + 1,
        )
    name = match.group()
    kind = TokenKind.KEYWORD if name in KEYWORDS else TokenKind.NAME
    tokens.append(Token(kind, name, pos + 1))
    return end


def _text(text: str, start: int, tokens: list[Token]) -> int:
    parts: list[str] = []
    pos, size = start + 1, len(text)
    while pos < size:
        char = text[pos]
        if char == '"':
            tokens.append(Token(TokenKind.TEXT, text[start : pos + 1], start + 1, "".join(parts)))
            return pos + 1
        if char == "\\":
            escaped, pos = _escape(text, pos)
            parts.append(escaped)
            continue
        if "\ud800" <= char <= "\udfff":
            raise FormulaError(f"invalid character U+{ord(char):04X} in text", column=pos + 1)
        parts.append(char)
        pos += 1
    raise FormulaError(
        f"text starting at column {start + 1} is missing its closing '\"'", column=size + 1
    )


def _escape(text: str, pos: int) -> tuple[str, int]:
    """Decode the escape sequence starting at the backslash at ``pos``; returns (char, next)."""
    code = text[pos + 1 : pos + 2]
    if code in ESCAPES:
        return ESCAPES[code], pos + 2
    if code != "u":
        shown = show_char(code) if code else "the end of the formula"
        raise FormulaError(
            f"unknown escape '\\' followed by {shown} at column {pos + 1}; "
            'use \\" \\\\ \\n \\t or \\uXXXX',
            column=pos + 1,
        )
    high = _hex4(text, pos)
    if not 0xD800 <= high <= 0xDFFF:
        return chr(high), pos + 6
    if high <= 0xDBFF and text.startswith("\\u", pos + 6):
        low = _hex4(text, pos + 6)
        if 0xDC00 <= low <= 0xDFFF:
            return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)), pos + 12
    raise FormulaError(
        f"escape at column {pos + 1} is half of a surrogate pair; write the whole character",
        column=pos + 1,
    )


def _hex4(text: str, pos: int) -> int:
    digits = text[pos + 2 : pos + 6]
    if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise FormulaError(
            f"escape at column {pos + 1} needs four hex digits, e.g. \\u00e9", column=pos + 1
        )
    return int(digits, 16)


__all__ = ["KEYWORDS", "MAX_LENGTH", "Token", "TokenKind", "shorten", "show_char", "tokenize"]
