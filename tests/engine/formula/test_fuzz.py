"""Fuzz: any text either compiles or raises FormulaError - quickly; what compiles evaluates."""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.formula import Formula, FormulaError, compile

FRAME = pl.DataFrame(
    {
        "x": [1.5, None, -2.0, 0.0],
        "n": [3, None, 0, -1],
        "s": ["gold", None, "", "12"],
        "customer.score": [0.5, 1e300, None, -1e300],
        "d": [date(2024, 1, 1), None, date(2020, 2, 29), date(2024, 6, 1)],
    }
)
AS_OF = datetime(2024, 6, 1)
TOKENS = [
    "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "!", "?", ":",
    "(", ")", "(", ")", ",", ",",
    "and", "or", "not", "true", "false", "null", "x", "n", "s", "d", "customer.score",
    "missing", "0", "1", "2.5", "1e308", ".5", '"gold"', '""', '"2024-01-01"',
    *(f"{name}(" for name in ("min", "max", "round", "abs", "sqrt", "pow", "log", "exp", "clamp",
                              "coalesce", "concat", "lower", "len", "contains", "if",
                              "days_since", "floor", "starts_with", "upper", "ceil")),
]  # fmt: skip
FORMULA_CHARS = "0123456789.eE+-*/%=!<>&|?:(),\"\\ _abcxyzn\t\nu'é\x00"


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail instead of hanging when the block runs longer than ``seconds``.

    Only a watchdog: the limit is far above the expected time, since the alarm may land
    anywhere (even inside a garbage-collector callback). Speed is asserted separately.
    """

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"took longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def no_gc() -> Iterator[None]:
    """Keep garbage collection (and its callbacks) out of a timing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def best_seconds(text: str, repeat: int = 3) -> float:
    """Fastest of ``repeat`` cold compiles (the cache cleared each time)."""
    times = []
    for _ in range(repeat):
        compile.cache_clear()  # type: ignore[attr-defined]
        with no_gc():
            started = time.perf_counter()
            with suppress(FormulaError):
                compile(text)
            times.append(time.perf_counter() - started)
    return min(times)


def compile_or_reject(text: str) -> Formula | None:
    """Only FormulaError may escape ``compile``, and it always returns."""
    with time_limit(30.0):
        try:
            return compile(text)
        except FormulaError as error:
            assert error.column is None or 1 <= error.column <= len(text) + 1
            assert error.message and error.code == "VALIDATION_ERROR"
            return None


def evaluates(formula: Formula) -> None:
    """A formula that compiles builds an expression and evaluates without raising."""
    with time_limit(60.0):
        for columns in (FRAME.schema, FRAME.columns):
            expr = formula.to_expr(columns, as_of=AS_OF)
            out = FRAME.with_columns(expr.alias("__out__"))
            assert out.height == FRAME.height


FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(st.text(max_size=300))
def test_any_unicode_text(text: str) -> None:
    compile_or_reject(text)


@FUZZ
@given(st.text(alphabet=FORMULA_CHARS, max_size=300))
def test_formula_like_characters(text: str) -> None:
    formula = compile_or_reject(text)
    if formula is not None:
        evaluates(formula)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_token_soup(text: str) -> None:
    formula = compile_or_reject(text)
    if formula is not None:
        evaluates(formula)


NASTIES = [
    "__import__('os')",
    '__import__("os").system("true")',
    "eval(1)",
    'exec("1")',
    "os.system(1)",
    "x.__class__",
    "().__class__.__bases__",
    "lambda: 0",
    "[1, 2]",
    "{1: 2}",
    "1 if 2 else 3",
    "x;y",
    "x = 1",
    "`ls`",
    "$x",
    "(" * 10_000,
    "(" * 8_000,
    ")" * 8_000,
    "(" * 64 + "1" + ")" * 64,
    "-" * 8_000 + "1",
    "!" * 8_000 + "1",
    "not " * 2_000 + "1",
    "1e999999",
    "-1e999999",
    "9" * 8_000,
    "0." + "0" * 8_000 + "1",
    "1" + "e" * 100,
    ".",
    "..",
    "1..2",
    "é",
    "𝟙 + 1",
    "١٢",
    "x\u200b+1",
    "\x00",
    "1\x002",
    '"\x00"',
    "\ud800",
    '"\ud800"',
    '"\\ud800"',
    '"\\u00"',
    '"\\',
    '"' + "\\" * 8_000,
    '"' + "a" * 8_189 + '"',
    '"' + "a" * 9_000 + '"',
    "1+" * 4_600 + "1",
    "x" * 8_192,
    "a." * 4_000 + "a",
    "min(" * 2_000 + "1" + ")" * 2_000,
    "x ?" * 3_000,
    "x ? y : " * 1_000 + "z",
    "((((" * 16 + "x" + "))))" * 16,
    "round(x, 99999999999999999999)",
    "round(x, 1e308)",
    "len(" + '"' + "a" * 8_000 + '"' + ")",
    "\n" * 8_000,
    " " * 9_000,
    "\t1\n",
    "1 +\r\n 2",
]


@pytest.mark.parametrize("text", NASTIES, ids=range(len(NASTIES)))
def test_hand_picked_nasties(text: str) -> None:
    formula = compile_or_reject(text)
    assert best_seconds(text) < 0.5
    if formula is not None:
        evaluates(formula)


def test_long_valid_formulas_compile_in_linear_time() -> None:
    def formula(terms: int) -> str:  # wide, not deep: long text within the depth limit
        return "max(" + ", ".join(['min(x, 1) * 2 + concat("a", s)'] * terms) + ")"

    assert len(formula(250)) <= 8192
    short = best_seconds(formula(25), repeat=5)
    long_ = best_seconds(formula(250), repeat=5)
    assert long_ < 0.5
    assert long_ < 50 * short  # 10x the text: linear is 10x, quadratic would be 100x
