"""Synthetic Starbucks rewards members, vectorized with numpy (no per-customer Python loop).

Distributions follow the public Starbucks rewards data set: ages 18-101 around a mean of ~54,
about 13% of members with unknown age, gender and income (the data set's age 118 placeholder),
gender M 57% / F 41% / O 1.4%, incomes 30k-120k in steps of $1,000 rising with age, and
membership start dates from mid-2013 to mid-2018 growing year over year. About 1% of members
are minors (13-17) so that the pack's age gate has something to do.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from engine.errors import ValidationError

FIRST_NAMES: tuple[str, ...] = (
    "Aisha", "Alex", "Ana", "Ben", "Carlos", "Chen", "Chloe", "Daniel", "Elena", "Emma",
    "Fatima", "Grace", "Hana", "Hugo", "Ines", "Jack", "James", "Jin", "Julia", "Kai",
    "Laura", "Leo", "Liam", "Lucas", "Maria", "Maya", "Mia", "Noah", "Nora", "Olivia",
    "Omar", "Priya", "Rosa", "Ryan", "Sam", "Sara", "Sofia", "Tom", "Yuki", "Zoe",
)  # fmt: skip

# Last membership start date in the public data; tenure, tiers and segments are relative to it
# so the customer table does not depend on the clock.
REFERENCE_DATE = date(2018, 7, 26)
_FIRST_MEMBER_DATE = date(2013, 7, 29)
# share of members who joined in 2013 ... 2018 (public data: 286 / 691 / 1830 / 3526 / 6469 / 4198)
_JOIN_YEAR_SHARE = np.array([286, 691, 1830, 3526, 6469, 4198], dtype=np.float64)
_UNKNOWN_SHARE = 0.128
_MINOR_SHARE = 0.01
_LAPSED_SHARE = 0.18
HIGH_INCOME = 70_000.0
SEGMENTS: tuple[str, ...] = ("high_income", "new_member", "loyal", "lapsed")

CUSTOMER_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "first_name": pl.String(),
    "age": pl.Int64(),
    "gender": pl.String(),
    "income": pl.Float64(),
    "member_since": pl.Date(),
    "tier": pl.String(),
    "segments": pl.List(pl.String()),
}


def customer_ids(n: int) -> pl.Expr:
    """``SBX-000001`` ... for rows 1..n: six digits at least, so a row's id never depends on n."""
    return pl.concat_str(
        pl.lit("SBX-"), pl.int_range(1, n + 1, dtype=pl.Int64).cast(pl.String).str.zfill(6)
    )


def _member_since(rng: np.random.Generator, n: int) -> np.ndarray:
    years = np.arange(2013, 2019)
    starts = np.array(
        [max(date(y, 1, 1), _FIRST_MEMBER_DATE) for y in years], dtype="datetime64[D]"
    )
    ends = np.array(
        [min(date(y + 1, 1, 1), date(2018, 7, 27)) for y in years], dtype="datetime64[D]"
    )
    spans = (ends - starts).astype(np.int64)
    year = rng.choice(len(years), size=n, p=_JOIN_YEAR_SHARE / _JOIN_YEAR_SHARE.sum())
    offset = np.floor(rng.random(n) * spans[year]).astype(np.int64)
    return starts[year] + offset.astype("timedelta64[D]")


def generate_customers(n: int = 1000, *, seed: int = 42) -> pl.DataFrame:
    """Generate ``n`` rewards members; the same ``(n, seed)`` gives an identical frame.

    Columns (see ``CUSTOMER_SCHEMA``): ``customer_id`` (``SBX-000001``...), ``first_name``,
    ``age`` (Int64; null when unknown), ``gender`` (M/F/O; null when unknown), ``income``
    (Float64; null when unknown), ``member_since`` (Date), ``tier`` (bronze/silver/gold from
    tenure and income) and ``segments`` (``high_income``, ``new_member``, ``loyal``, ``lapsed``).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValidationError(f"n must be a non-negative integer, got {n!r}", field="n")
    rng = np.random.default_rng(seed)

    unknown = rng.random(n) < _UNKNOWN_SHARE
    minor = ~unknown & (rng.random(n) < _MINOR_SHARE)
    age = np.clip(np.rint(rng.normal(54.5, 17.0, n)), 18, 101).astype(np.int64)
    age = np.where(minor, rng.integers(13, 18, n), age)
    gender = rng.choice(3, size=n, p=[0.572, 0.414, 0.014])
    # income rises with age and is a little higher for women, as in the public data
    mean_income = 42_000 + 550 * (np.minimum(age, 80) - 18) + 6_000 * (gender == 1)
    income = np.clip(np.rint(rng.normal(mean_income, 17_000) / 1_000) * 1_000, 30_000, 120_000)
    income = np.where(minor, 30_000 + 1_000 * rng.integers(0, 11, n), income).astype(np.float64)
    name = rng.integers(0, len(FIRST_NAMES), n)
    member_since = _member_since(rng, n)
    lapsed_draw = rng.random(n) < _LAPSED_SHARE

    tenure_years = (np.datetime64(REFERENCE_DATE) - member_since).astype(np.int64) / 365.25
    known_income = np.where(unknown, np.nan, income)
    gold = (tenure_years >= 3.5) | ((tenure_years >= 2.0) & (known_income >= 80_000))
    silver = (tenure_years >= 1.5) | (known_income >= 65_000)
    tier = np.where(gold, 2, np.where(silver, 1, 0))
    new_member = tenure_years < 1.0

    flags = (
        ~unknown & (income > HIGH_INCOME),  # high_income
        new_member,  # new_member
        tenure_years >= 3.0,  # loyal
        lapsed_draw & ~new_member,  # lapsed
    )
    segment_code = np.zeros(n, dtype=np.int64)
    for bit, flag in enumerate(flags):
        segment_code |= flag.astype(np.int64) << bit

    frame = pl.DataFrame(
        {
            "customer_id": pl.select(customer_ids(n)).to_series(),
            "first_name": pl.Series(FIRST_NAMES).gather(name),
            "age": age,
            "gender": pl.Series(["M", "F", "O"]).gather(gender),
            "income": income,
            "member_since": member_since,
            "tier": pl.Series(["bronze", "silver", "gold"]).gather(tier),
            "segments": _SEGMENT_LISTS.gather(segment_code),
            "_unknown": unknown,
        }
    )
    # the public data's "age 118" members: age, gender and income unknown together
    hidden = [
        pl.when(~pl.col("_unknown")).then(pl.col(c)).alias(c) for c in ("age", "gender", "income")
    ]
    return frame.with_columns(hidden).drop("_unknown").cast(CUSTOMER_SCHEMA)


# every combination of the segment flags (bit k = SEGMENTS[k]) -> its list, gathered by code
_SEGMENT_LISTS = pl.Series(
    [
        [s for bit, s in enumerate(SEGMENTS) if code >> bit & 1]
        for code in range(1 << len(SEGMENTS))
    ],
    dtype=pl.List(pl.String()),
)
