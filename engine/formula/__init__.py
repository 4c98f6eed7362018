"""Formula language for computed values, compiled to one Polars expression (spec §11).

    >>> import polars as pl
    >>> from engine.formula import compile
    >>> frame = pl.DataFrame({"base_rate": [20.0], "customer.loyalty_score": [10]})
    >>> formula = compile("base_rate * (1 - customer.loyalty_score * 0.01)")
    >>> frame.select(formula.to_expr(frame.schema).alias("rate")).item()
    18.0

Text is tokenized and parsed by hand into a small frozen syntax tree, then compiled to a
``pl.Expr`` that runs vectorized over any number of candidate rows. No host code is ever
executed and nothing is evaluated per row in Python.

Syntax
------
- Numbers ``2``, ``0.15``, ``.5``, ``1e-3``; text in double quotes with the escapes
  ``\\" \\\\ \\/ \\n \\r \\t \\uXXXX``; ``true`` (= 1), ``false`` (= 0), ``null``.
- Names: dots are part of the name. ``customer.loan_amount``, ``attributes.tier`` and
  ``metrics.ctr_30d`` each read the frame column with exactly that name; a bare name such as
  ``base_rate`` is an offer custom field.
- Keywords (``true false null and or not``) and function names are lower case.

Precedence (low -> high)
------------------------
=====  ==================================  =================================================
Level  Operators                           Notes
=====  ==================================  =================================================
0      ``c ? a : b``                       right-associative: ``a ? b : c ? d : e``
1      ``||``  ``or``                      left-associative, returns 1 or 0
2      ``&&``  ``and``                     left-associative, returns 1 or 0
3      ``== != < <= > >=``                 non-associative: ``a < b < c`` is an error
4      ``+  -``                            left-associative
5      ``*  /  %``                         left-associative
6      unary ``-  +  !  not``              ``not a == b`` means ``(not a) == b``
7      ``f(x, ...)``, ``( )``, literals, names
=====  ==================================  =================================================

Values and nulls
----------------
- Numbers are 64-bit floats. A result that is not a finite number is null: ``10 / 0``,
  ``5 % 0``, overflow (``1e308 * 10``), ``sqrt(-1)``, ``log(0)``, ``pow(-8, 1/3)``. ``%`` is
  floored, like Python: ``-7 % 3`` = 2.
- ``null`` propagates through arithmetic, comparisons and functions; ``coalesce`` is the
  escape. A variable that is not a column of the frame is null, not an error.
- Comparisons and logical operators return the numbers 1 and 0, never booleans.
- Truthiness (``?:``, ``if``, ``&&``, ``||``, ``!``): 0, null and "" are false; everything
  else is true. ``&&``/``||``/``!`` never return null.
- Text and numbers: ``+`` joins text when either side is text (a number is written in its
  shortest form: 18 -> "18", 0.5 -> "0.5"); other arithmetic reads text as a number
  (``"12.5" * 2`` = 25, ``"abc" * 2`` = null). Comparing a number with text compares
  numbers (text that is not a number makes the result null); text with text compares
  case-sensitively by code point.
- Types come from literals, functions and the frame schema passed to ``to_expr``. Without
  a schema, column types are unknown: such a column is read as a number wherever a number
  could be meant (arithmetic, comparing two unknown columns), as text next to text, and its
  truthiness looks at its text form ("", "0", "0.0", "-0.0", "false" are false).
- ``?:``, ``if`` and ``coalesce`` return one type: if any branch is text, all are text.
- Date and Datetime columns are meaningful in ``days_since``, in comparisons with other
  dates (time zones respected) or with ISO text (compared as text), and as text; in
  arithmetic they are null. Columns of other types (lists, structs, binary, ...) read as null.

Functions (unknown name or wrong argument count is a compile error)
-------------------------------------------------------------------
==========================  ===============================================================
``min(a, ...)``             smallest argument; null if any argument is null
``max(a, ...)``             largest argument; null if any argument is null
``round(x, n)``             n decimals (a literal 0..15, default 0), half away from zero
``floor ceil abs``          as usual
``sqrt(x)``                 null for x < 0
``pow(x, y)``               x to the power y; null when undefined or too large
``log(x)``                  natural logarithm; null for x <= 0
``exp(x)``                  e to the power x; null when too large
``clamp(x, lo, hi)``        ``min(max(x, lo), hi)``
``coalesce(a, ...)``        first argument that is not null
``concat(a, ...)``          joins the arguments as text; null arguments count as ""
``lower upper``             change case of text
``len(s)``                  number of characters
``contains(s, part)``       1 if ``part`` occurs in ``s``, else 0 (case-sensitive, no patterns)
``starts_with(s, prefix)``  1 or 0
``if(c, a, b)``             same as ``c ? a : b``
``days_since(d)``           days (fractional) from ``d`` to the decision's ``as_of``
==========================  ===============================================================

``round`` rounds ``x * 10**n`` half away from zero and divides back, so ties are decided on
the binary value: ``round(2.5)`` = 3, ``round(-2.5)`` = -3, ``round(2.675, 2)`` = 2.68,
``round(1.005, 2)`` = 1.0 (1.005 is stored as 1.00499...).

``days_since`` takes a Date/Datetime column or ISO text ``YYYY-MM-DD`` or
``YYYY-MM-DD[T ]HH:MM:SS[.ffffff][Z|±HH:MM]`` (no offset means UTC); other text gives null.
``as_of`` is passed to ``to_expr``; the clock is never read.

Building expressions
--------------------
``compile(text)`` parses and validates (cached by text); ``Formula.to_expr(columns,
as_of=...)`` builds the ``pl.Expr`` for a frame: pass ``frame.collect_schema()`` so that
every variable gets its type. Parts of the formula that read no column are evaluated once,
by Polars, while the expression is built, and a formula that reads no column at all is a
scalar that broadcasts to any frame. Alias the expression yourself.

Limits
------
A formula is at most 8192 characters and 64 levels deep (parentheses, unary operators,
``?:``, function calls and chains of operators all count); parsing is linear in its length.
Deep nesting of heavy functions (e.g. 30 ``clamp`` inside each other) is refused as too
complex: Polars would overflow its worker-thread stack evaluating it.
Every problem raises :class:`FormulaError` (a ``ValidationError``, HTTP 400) whose message
names the 1-based ``column``, e.g. ``expected ')' to close '(' at column 7``.
"""

from engine.formula._errors import FormulaError
from engine.formula._formula import Formula, compile, compile_formula
from engine.formula._types import finite

__all__ = ["Formula", "FormulaError", "compile", "compile_formula", "finite"]
